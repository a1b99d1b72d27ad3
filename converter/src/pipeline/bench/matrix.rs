//! What `xc_bench` prints, parsed; the benchmark x configuration matrix
//! with ratios to stock; and the table `xc-convert bench` prints.
//!
//! Kept apart from the boots so all of it is tested on text alone.

use serde::Serialize;
use std::fmt::Write as _;

/// `XC-BENCH <name> <ns_per_op>` (see converter/guest/xc_bench.c).
const BENCH: &str = "XC-BENCH ";
/// `XC-BENCH-INFO <key> <value>`.
const INFO: &str = "XC-BENCH-INFO ";

/// The rows, in table order, with what one operation is. The names are the
/// `rows[]` of xc_bench.c; a name missing from a boot's output is an error.
pub const ROWS: &[(&str, &str)] = &[
    ("getppid", "getppid()"),
    ("pipe_write_read_1B", "write 1 byte to a pipe + read it back"),
    ("pipe_pingpong", "1 byte to a forked child and back over two pipes (round trip)"),
    ("futex_wake_wait", "FUTEX_WAKE, no waiter + FUTEX_WAIT on a changed value (EAGAIN)"),
    ("mmap_munmap_page", "mmap one anonymous page, touch it, munmap it"),
    ("fork_exit_wait", "fork + child exit_group + wait4"),
];

/// What one run of `xc_bench` printed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GuestOutput {
    /// (benchmark, ns per op) in the order printed.
    pub rows: Vec<(String, f64)>,
    /// (key, value) in the order printed: the CPL, /proc/xc_libos deltas.
    pub info: Vec<(String, String)>,
}

impl GuestOutput {
    /// The value of an info key.
    pub fn info(&self, key: &str) -> Option<&str> {
        self.info.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Why the output of the boots does not make a matrix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatrixError {
    /// A line with the marker whose value is not a number.
    #[error("malformed xc_bench line: {line:?}")]
    Malformed { line: String },
    /// A benchmark a configuration did not report.
    #[error("{config}: xc_bench printed no `XC-BENCH {row}` line")]
    MissingRow { config: String, row: String },
    /// Zero, negative, NaN or infinite: a broken clock or loop.
    #[error("{config}: {row} = {value} ns is not a positive finite number")]
    BadValue { config: String, row: String, value: f64 },
}

/// Parse the `XC-BENCH` and `XC-BENCH-INFO` lines among console lines.
/// Markers are looked for anywhere in a line, since a printk can share a
/// line with the program's output on the serial console.
pub fn parse_guest_output<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<GuestOutput, MatrixError> {
    let mut out = GuestOutput::default();
    for line in lines {
        let malformed = || MatrixError::Malformed { line: line.trim().to_owned() };
        if let Some(rest) = after(line, INFO) {
            let (key, value) = rest.trim().split_once(' ').ok_or_else(malformed)?;
            out.info.push((key.to_owned(), value.trim().to_owned()));
        } else if let Some(rest) = after(line, BENCH) {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(value)) = (words.next(), words.next()) else { return Err(malformed()) };
            let ns: f64 = value.parse().map_err(|_| malformed())?;
            out.rows.push((name.to_owned(), ns));
        }
    }
    Ok(out)
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}

/// One benchmark across the configurations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The benchmark's name (a key of [`ROWS`]).
    pub name: String,
    /// What one operation is.
    pub what: String,
    /// ns per operation, one per configuration, in column order.
    pub ns: Vec<f64>,
    /// ns / the first column's ns, one per configuration (the first is 1).
    pub ratio: Vec<f64>,
}

/// Benchmarks x configurations; the first configuration is the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    /// Configuration names, in column order.
    pub columns: Vec<String>,
    /// One per entry of [`ROWS`], in that order.
    pub rows: Vec<Row>,
}

impl Matrix {
    /// Build the matrix from each configuration's output (the first one is
    /// the baseline of the ratios). Every row of [`ROWS`] must be there with
    /// a positive finite value; the last value printed for a name wins.
    pub fn new(outputs: &[(String, GuestOutput)]) -> Result<Self, MatrixError> {
        let mut rows = Vec::new();
        for (name, what) in ROWS {
            let mut ns = Vec::new();
            for (config, out) in outputs {
                let missing = || MatrixError::MissingRow { config: config.clone(), row: (*name).to_owned() };
                let value = out.rows.iter().rev().find(|(n, _)| n == name).map(|(_, v)| *v).ok_or_else(missing)?;
                if !(value.is_finite() && value > 0.0) {
                    return Err(MatrixError::BadValue { config: config.clone(), row: (*name).to_owned(), value });
                }
                ns.push(value);
            }
            let base = ns.first().copied().unwrap_or(1.0);
            let ratio = ns.iter().map(|v| v / base).collect();
            rows.push(Row { name: (*name).to_owned(), what: (*what).to_owned(), ns, ratio });
        }
        Ok(Self { columns: outputs.iter().map(|(c, _)| c.clone()).collect(), rows })
    }
}

/// A ns value for the table: one decimal below 10 µs, whole ns above
/// (TCG noise is far larger than the digits dropped).
fn fmt_ns(v: f64) -> String {
    if v < 10_000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A ratio for the table, e.g. `0.62x`.
pub fn fmt_ratio(r: f64) -> String {
    format!("{r:.2}x")
}

/// The table: ns per op for every configuration, then each non-baseline
/// configuration's ratio to the baseline, right-aligned in columns.
pub fn render_table(m: &Matrix) -> String {
    let base = m.columns.first().map(String::as_str).unwrap_or("stock");
    let mut header: Vec<String> = vec!["ns per op".into()];
    header.extend(m.columns.iter().cloned());
    header.extend(m.columns.iter().skip(1).map(|c| format!("{c}/{base}")));
    let mut cells: Vec<Vec<String>> = vec![header];
    for r in &m.rows {
        let mut line = vec![r.name.clone()];
        line.extend(r.ns.iter().map(|v| fmt_ns(*v)));
        line.extend(r.ratio.iter().skip(1).map(|v| fmt_ratio(*v)));
        cells.push(line);
    }
    let widths: Vec<usize> =
        (0..cells[0].len()).map(|i| cells.iter().map(|l| l.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for line in &cells {
        let mut text = String::new();
        for (i, c) in line.iter().enumerate() {
            if i == 0 {
                let _ = write!(text, "{c:<w$}", w = widths[0]);
            } else {
                let _ = write!(text, "  {c:>w$}", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(scale: f64) -> GuestOutput {
        GuestOutput {
            rows: ROWS.iter().enumerate().map(|(i, (n, _))| (n.to_string(), scale * 100.0 * (i + 1) as f64)).collect(),
            info: vec![],
        }
    }

    #[test]
    fn parses_bench_and_info_lines_among_kernel_noise() {
        let log = "XC-BENCH-INFO iterations 20000\r\n\
                   XC-BENCH getppid 812.4\n\
                   [    3.1] random: crng init done XC-BENCH pipe_pingpong 40123.0\n\
                   some other line\n\
                   XC-BENCH-INFO syscalls_via_table +120034\n\
                   XC-BENCH-INFO xc_libos absent\n";
        let out = parse_guest_output(log.lines()).unwrap();
        assert_eq!(out.rows, vec![("getppid".to_string(), 812.4), ("pipe_pingpong".to_string(), 40123.0)]);
        assert_eq!(out.info("iterations"), Some("20000"));
        assert_eq!(out.info("syscalls_via_table"), Some("+120034"));
        assert_eq!(out.info("xc_libos"), Some("absent"));
        assert_eq!(out.info("nope"), None);
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        for bad in ["XC-BENCH getppid", "XC-BENCH getppid fast", "XC-BENCH-INFO lonely"] {
            let err = parse_guest_output([bad]).unwrap_err();
            assert_eq!(err, MatrixError::Malformed { line: bad.to_string() }, "{bad}");
        }
    }

    #[test]
    fn ratios_are_value_over_the_first_column() {
        let m = Matrix::new(&[("stock".into(), output(1.0)), ("libos".into(), output(0.5))]).unwrap();
        assert_eq!(m.columns, ["stock", "libos"]);
        assert_eq!(m.rows.len(), ROWS.len());
        for r in &m.rows {
            assert_eq!(r.ratio[0], 1.0);
            assert!((r.ratio[1] - r.ns[1] / r.ns[0]).abs() < 1e-12);
            assert!((r.ratio[1] - 0.5).abs() < 1e-12);
        }
    }

    #[test]
    fn a_missing_row_names_the_configuration_and_row() {
        let mut short = output(1.0);
        short.rows.retain(|(n, _)| n != "futex_wake_wait");
        let err = Matrix::new(&[("stock".into(), output(1.0)), ("libos+xlat".into(), short)]).unwrap_err();
        assert_eq!(err.to_string(), "libos+xlat: xc_bench printed no `XC-BENCH futex_wake_wait` line");
    }

    #[test]
    fn non_positive_or_non_finite_values_are_refused() {
        for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut o = output(1.0);
            o.rows[0].1 = v;
            let err = Matrix::new(&[("stock".into(), o)]).unwrap_err();
            assert!(matches!(err, MatrixError::BadValue { .. }), "{v}: {err}");
        }
    }

    #[test]
    fn table_has_a_header_one_line_per_row_and_aligned_ratio_columns() {
        let m = Matrix::new(&[
            ("stock".into(), output(1.0)),
            ("stock-nomitig".into(), output(0.9)),
            ("libos".into(), output(0.62)),
            ("libos+xlat".into(), output(0.3)),
        ])
        .unwrap();
        let t = render_table(&m);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 1 + ROWS.len(), "{t}");
        let head: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            head,
            ["ns", "per", "op", "stock", "stock-nomitig", "libos", "libos+xlat", "stock-nomitig/stock", "libos/stock", "libos+xlat/stock"]
        );
        let getppid: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(getppid, ["getppid", "100.0", "90.0", "62.0", "30.0", "0.90x", "0.62x", "0.30x"]);
        // Right-aligned: every line ends at the same column.
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{t}");
        // Big values lose their decimals.
        assert!(fmt_ns(123_456.78) == "123457" && fmt_ns(812.44) == "812.4");
    }
}
