//! The date of a source tree: what a build or a patch series claims as its
//! date, so that the same input gives the same bytes whenever it is used.

use std::path::Path;

/// The mtime of the tree's top Makefile in seconds since the epoch (0 when
/// it cannot be read). Extraction keeps the archive's member times (a
/// Debian or kernel.org tarball's release date, a git commit's date), so
/// this is a property of the input, not of when or where it was unpacked.
pub fn source_epoch(tree_root: &Path) -> u64 {
    std::fs::metadata(tree_root.join("Makefile"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilDate {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Day of the week, 0 = Sunday.
    pub weekday: u32,
}

impl CivilDate {
    /// The UTC date of `epoch`, without a date crate (days-to-civil from
    /// H. Hinnant's algorithms).
    pub fn of_epoch(epoch: u64) -> CivilDate {
        let days = (epoch / 86_400) as i64;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // 1970-01-01 was a Thursday.
        CivilDate { year, month: month as u32, day: day as u32, weekday: ((days + 4) % 7) as u32 }
    }

    /// `YYYY-MM-DD`.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_known_epochs() {
        assert_eq!(CivilDate::of_epoch(0).iso(), "1970-01-01");
        assert_eq!(CivilDate::of_epoch(0).weekday, 4);
        assert_eq!(CivilDate::of_epoch(1_700_000_000).iso(), "2023-11-14");
        assert_eq!(CivilDate::of_epoch(951_782_400).iso(), "2000-02-29");
        assert_eq!(CivilDate::of_epoch(951_782_399).iso(), "2000-02-28");
    }

    #[test]
    fn the_epoch_is_the_makefile_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = std::fs::File::create(dir.path().join("Makefile")).expect("create");
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)).expect("set mtime");
        assert_eq!(source_epoch(dir.path()), 1_700_000_000);
        assert_eq!(source_epoch(&dir.path().join("missing")), 0);
    }
}
