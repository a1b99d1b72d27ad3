//! DEP-3 headers (<https://dep-team.pages.debian.net/deps/dep3/>) for the
//! series handed to distribution packagers (`patch --export`).
//!
//! A packager's tools (lintian, the Debian patch tracker, `dpkg-source`)
//! read the fields at the top of each patch; the diff below them is the
//! same as in the cache's own series. Nothing here reads the clock: the
//! date comes from the source tree, so exporting the same conversion twice,
//! anywhere, gives the same bytes.

use super::GroupPatch;
use crate::source::date::CivilDate;

/// `Origin:` of every generated patch: made by this tool, at this version
/// (a packager must regenerate the series with the xc-convert they ship).
pub const ORIGIN: &str = concat!("vendor, xc-convert ", env!("CARGO_PKG_VERSION"));

/// The header of one patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep3Header {
    /// The `Description:` field's first line.
    pub summary: String,
    /// The longer text, one continuation line per line.
    pub long: String,
    /// `Last-Update:`.
    pub last_update: CivilDate,
}

impl Dep3Header {
    /// The header of a generated group patch, dated `last_update`.
    pub fn for_group(patch: &GroupPatch, last_update: CivilDate) -> Dep3Header {
        // A multi-line subject keeps its first line as the summary; the rest
        // leads the long text rather than being lost.
        let mut lines = patch.description.trim().lines();
        let summary = lines.next().unwrap_or("").trim().to_string();
        let rest: Vec<&str> = lines.collect();
        let long = [rest.join("\n").trim().to_string(), patch.why.trim().to_string()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        Dep3Header { summary, long, last_update }
    }

    /// The fields, ending with the empty line that ends a DEP-3 header.
    pub fn render(&self) -> String {
        let mut out = format!("Description: {}\n", self.summary);
        out.push_str(&fold(&self.long));
        out.push_str(&format!("Origin: {ORIGIN}\n"));
        // The conversion is this tool's job, not a change upstream wants.
        out.push_str("Forwarded: not-needed\n");
        out.push_str(&format!("Last-Update: {}\n\n", self.last_update.iso()));
        out
    }
}

/// `text` as RFC 822 continuation lines: each line indented by one space,
/// an empty line written as ` .` (a bare empty line would end the header).
/// Trailing blanks are dropped: they would not survive an editor anyway.
pub fn fold(text: &str) -> String {
    text.trim_matches('\n')
        .lines()
        .map(|l| {
            let l = l.trim_end();
            if l.is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect()
}

/// One patch of the exported series: the DEP-3 header, `---`, the diff.
pub fn render_patch(patch: &GroupPatch, last_update: CivilDate) -> String {
    format!("{}---\n{}", Dep3Header::for_group(patch, last_update).render(), patch.diff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(description: &str, why: &str) -> GroupPatch {
        GroupPatch {
            file_name: "0001-kconfig.patch".into(),
            description: description.into(),
            why: why.into(),
            text: String::new(),
            diff: "diff --git a/Makefile b/Makefile\n--- a/Makefile\n+++ b/Makefile\n@@ -1 +1 @@\n-a\n+b\n".into(),
        }
    }

    const DAY: u64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

    #[test]
    fn header_has_every_field_in_order_and_ends_with_an_empty_line() {
        let text = render_patch(&group("x86: add XC", "Because."), CivilDate::of_epoch(DAY));
        let (header, diff) = text.split_once("\n\n---\n").expect("header, then ---");
        let names: Vec<&str> = header.lines().filter(|l| !l.starts_with(' ')).map(|l| l.split_once(": ").expect("field").0).collect();
        assert_eq!(names, ["Description", "Origin", "Forwarded", "Last-Update"]);
        assert!(header.starts_with("Description: x86: add XC\n Because.\n"), "{header}");
        assert!(header.contains(&format!("\nOrigin: vendor, xc-convert {}\n", env!("CARGO_PKG_VERSION"))));
        assert!(header.contains("\nForwarded: not-needed\n"));
        assert!(header.ends_with("\nLast-Update: 2023-11-14"));
        assert!(diff.starts_with("diff --git a/Makefile b/Makefile\n"), "{diff}");
    }

    #[test]
    fn long_text_folds_into_continuation_lines() {
        assert_eq!(fold("\nfirst line\n  indented\t \n\nafter a gap\n"), " first line\n   indented\n .\n after a gap\n");
        assert_eq!(fold(""), "");
        // No line of the header is empty before its end, whatever the text.
        let h = Dep3Header::for_group(&group("subject\nmore subject", "a\n\n\nb"), CivilDate::of_epoch(0)).render();
        assert_eq!(h, format!("Description: subject\n more subject\n .\n a\n .\n .\n b\nOrigin: {ORIGIN}\nForwarded: not-needed\nLast-Update: 1970-01-01\n\n"));
        assert_eq!(h.matches("\n\n").count(), 1, "{h}");
    }

    #[test]
    fn no_long_text_means_just_the_summary() {
        let h = Dep3Header::for_group(&group("  only a subject  ", "  \n"), CivilDate::of_epoch(DAY)).render();
        assert!(h.starts_with("Description: only a subject\nOrigin: "), "{h}");
    }

    #[test]
    fn the_date_is_the_source_date_not_the_clock() {
        let a = render_patch(&group("s", "w"), CivilDate::of_epoch(DAY));
        let b = render_patch(&group("s", "w"), CivilDate::of_epoch(DAY + 3600));
        assert_eq!(a, b, "the same source day gives the same bytes");
        let today = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after epoch").as_secs();
        assert!(!render_patch(&group("s", "w"), CivilDate::of_epoch(DAY)).contains(&CivilDate::of_epoch(today).iso()));
        assert!(render_patch(&group("s", "w"), CivilDate::of_epoch(DAY + 86_400)).contains("Last-Update: 2023-11-15\n"));
    }
}
