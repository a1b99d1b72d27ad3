//! The matrix's report, made from the cells' records alone (so a Slurm
//! run's shared directory gives the same report as a local run):
//! `matrix.json`, `matrix.md` (one row per cell) and `matrix.html` (the
//! table coloured by status, and SVG plots across releases), and the
//! comparison with an older report that names every regression.

use super::cell::{cell_dir, RECORD};
use super::metadata::{CellRecord, Status};
use super::spec::StageName;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors of reading cell records or writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// A report file could not be published.
    #[error(transparent)]
    Publish(#[from] build_farm::PublishError),
    /// A record does not parse.
    #[error("{}: not a cell record or matrix report: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// serde's message.
        message: String,
    },
    /// The directory holds no cells.
    #[error("{}: no matrix results here (no cells/*/cell.json and no matrix.json)", dir.display())]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
}

/// `matrix.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixReport {
    /// Cells in plan order.
    pub cells: Vec<CellRecord>,
    /// Totals.
    pub totals: Totals,
}

/// How many cells ended how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Cells with a record.
    pub cells: usize,
    /// PASS.
    pub pass: usize,
    /// FAIL.
    pub fail: usize,
    /// Planned cells with no record yet (still running, or not started).
    pub missing: Vec<String>,
}

/// The order cells are planned in (`plan.json`, written by `matrix run`).
pub const PLAN: &str = "plan.json";

/// Read every cell record under `out`, in plan order when there is a plan.
pub fn collect(out: &Path) -> Result<MatrixReport, ReportError> {
    let plan: Vec<String> = std::fs::read_to_string(out.join(PLAN))
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<super::spec::CellSpec>>(&t).ok())
        .map(|cells| cells.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    let mut found: BTreeMap<String, CellRecord> = BTreeMap::new();
    let cells_dir = out.join("cells");
    if let Ok(entries) = std::fs::read_dir(&cells_dir) {
        for e in entries.flatten() {
            let path = e.path().join(RECORD);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let r: CellRecord = serde_json::from_str(&text).map_err(|e| ReportError::Parse { path: path.clone(), message: e.to_string() })?;
            found.insert(r.id.clone(), r);
        }
    }
    if found.is_empty() && plan.is_empty() {
        return Err(ReportError::Empty { dir: out.to_path_buf() });
    }
    let mut cells = Vec::new();
    let mut missing = Vec::new();
    for id in &plan {
        match found.remove(id) {
            Some(r) => cells.push(r),
            None => missing.push(id.clone()),
        }
    }
    // Records of cells no longer planned still count when there is no plan.
    if plan.is_empty() {
        cells.extend(found.into_values());
    }
    let totals = Totals {
        cells: cells.len(),
        pass: cells.iter().filter(|c| c.results.status == Status::Pass).count(),
        fail: cells.iter().filter(|c| c.results.status == Status::Fail).count(),
        missing,
    };
    Ok(MatrixReport { cells, totals })
}

/// Read a report: `DIR/matrix.json` when there, else collected from the cells.
pub fn load(dir: &Path) -> Result<MatrixReport, ReportError> {
    let path = dir.join("matrix.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| ReportError::Parse { path, message: e.to_string() }),
        Err(_) => collect(dir),
    }
}

/// Write matrix.json, matrix.md and matrix.html into `out`.
pub fn write(out: &Path, report: &MatrixReport) -> Result<Vec<PathBuf>, ReportError> {
    let json = out.join("matrix.json");
    build_farm::write_json_atomic(&json, report)?;
    let md = out.join("matrix.md");
    build_farm::write_atomic(&md, markdown(report, out).as_bytes())?;
    let html = out.join("matrix.html");
    build_farm::write_atomic(&html, page(report, out).as_bytes())?;
    Ok(vec![json, md, html])
}

const SHOWN: [StageName; 6] = [StageName::Pull, StageName::Analyze, StageName::Patch, StageName::Config, StageName::Build, StageName::Boot];

fn stage_cell(r: &CellRecord, s: StageName) -> String {
    match r.stage(s) {
        Some(st) if st.status == Status::Skip && st.reason.as_deref() == Some("not in the spec's stages") => "-".into(),
        Some(st) if st.status == Status::Skip => "SKIP".into(),
        Some(st) => format!("{} {:.0}s", st.status.name(), st.seconds),
        None => "?".into(),
    }
}

/// The first failure's reason, shortened for a table.
fn failure(r: &CellRecord) -> String {
    let reason = r.results.stages.iter().find(|s| s.status == Status::Fail).and_then(|s| Some(format!("{}: {}", s.stage.name(), s.reason.as_deref()?)));
    let mut s = reason.unwrap_or_default().replace('|', "\\|").replace('\n', " ");
    if s.len() > 300 {
        let cut = (0..=300).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn size_kib(r: &CellRecord) -> String {
    r.build.image_size.map(|s| format!("{}", s / 1024)).unwrap_or_default()
}

fn boot_s(r: &CellRecord) -> String {
    r.results.boot.as_ref().map(|b| format!("{:.1}", b.seconds)).unwrap_or_default()
}

/// The Markdown table.
pub fn markdown(report: &MatrixReport, out: &Path) -> String {
    let mut s = format!(
        "# Matrix {}\n\n{} cells: {} PASS, {} FAIL{}\n\n| kernel | version | profile | mode | result | pull | analyze | patch | config | build | boot | bzImage KiB | boot s | failure |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        out.display(),
        report.totals.cells,
        report.totals.pass,
        report.totals.fail,
        if report.totals.missing.is_empty() { String::new() } else { format!(", {} without a result ({})", report.totals.missing.len(), report.totals.missing.join(", ")) }
    );
    for r in &report.cells {
        let stages: Vec<String> = SHOWN.iter().map(|st| stage_cell(r, *st)).collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | **{}** | {} | {} | {} | {} |\n",
            r.build.kernel,
            r.source.version.as_deref().unwrap_or(""),
            r.build.profile,
            r.build.mode,
            r.results.status.name(),
            stages.join(" | "),
            size_kib(r),
            boot_s(r),
            failure(r)
        ));
    }
    s.push_str(&bench_markdown(report));
    s
}

/// The stock cell a cell's bench values are divided by: same kernel,
/// source and profile, mode stock, with a bench result.
fn stock_of<'a>(report: &'a MatrixReport, r: &CellRecord) -> Option<&'a CellRecord> {
    report.cells.iter().find(|s| {
        s.mode == super::spec::CellMode::Stock && s.build.kernel == r.build.kernel && s.build.profile == r.build.profile && s.source.source_hash == r.source.source_hash && s.results.bench.is_some()
    })
}

/// ns of `row` in `r` divided by its stock cell's; None for stock cells
/// and cells without a bench result or a stock cell to compare with.
fn bench_ratio(report: &MatrixReport, r: &CellRecord, row: &str) -> Option<f64> {
    if r.mode == super::spec::CellMode::Stock {
        return None;
    }
    let ns = |c: &CellRecord| c.results.bench.as_ref()?.rows.iter().find(|x| x.name == row).map(|x| x.ns);
    let base = ns(stock_of(report, r)?)?;
    Some(ns(r)? / base)
}

/// The names of the bench rows any cell measured, in the order measured.
fn bench_rows(report: &MatrixReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for b in report.cells.iter().filter_map(|c| c.results.bench.as_ref()) {
        for row in &b.rows {
            if !names.contains(&row.name) {
                names.push(row.name.clone());
            }
        }
    }
    names
}

/// What the bench values are (TCG: costs of the emulator), from the first
/// cell that ran bench.
fn bench_note(report: &MatrixReport) -> String {
    let accel = report.cells.iter().find_map(|c| c.results.bench.as_ref()).map(|b| b.accel.as_str()).unwrap_or_default();
    crate::pipeline::bench::accel_note(accel)
}

/// ns per operation per cell that ran bench, with the ratio to the stock
/// cell of its kernel and profile; empty when no cell ran bench.
fn bench_markdown(report: &MatrixReport) -> String {
    let names = bench_rows(report);
    if names.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n## bench: ns per operation (ratio to the stock cell of the same kernel and profile)\n\n{}\n\n| kernel | profile | mode | column | {} |\n|---|---|---|---|{}\n",
        bench_note(report),
        names.join(" | "),
        "---|".repeat(names.len())
    );
    for r in &report.cells {
        let Some(b) = &r.results.bench else { continue };
        let values: Vec<String> = names
            .iter()
            .map(|n| {
                let ns = b.rows.iter().find(|x| &x.name == n).map(|x| format!("{:.0}", x.ns)).unwrap_or_default();
                match bench_ratio(report, r, n) {
                    Some(q) => format!("{ns} ({q:.2}x)"),
                    None => ns,
                }
            })
            .collect();
        s.push_str(&format!("| {} | {} | {} | {} | {} |\n", r.build.kernel, r.build.profile, r.build.mode, b.column, values.join(" | ")));
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn colour(text: &str) -> &'static str {
    if text.starts_with("PASS") {
        "#c8f0c8"
    } else if text.starts_with("FAIL") {
        "#f4b8b8"
    } else if text.starts_with("SKIP") {
        "#f0e6b0"
    } else {
        "#eeeeee"
    }
}

/// The HTML page: totals, the coloured table, and the plots.
pub fn page(report: &MatrixReport, out: &Path) -> String {
    let mut rows = String::new();
    for r in &report.cells {
        let mut tds = format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"background:{}\"><b>{}</b></td>",
            esc(&r.build.kernel),
            esc(r.source.version.as_deref().unwrap_or("")),
            esc(&r.build.profile),
            esc(&r.build.mode),
            colour(r.results.status.name()),
            r.results.status.name()
        );
        for st in SHOWN {
            let t = stage_cell(r, st);
            let title = r.stage(st).and_then(|s| s.reason.clone()).unwrap_or_default();
            tds.push_str(&format!("<td style=\"background:{}\" title=\"{}\">{}</td>", colour(&t), esc(&title), esc(&t)));
        }
        tds.push_str(&format!("<td>{}</td><td>{}</td><td class=\"why\">{}</td>", size_kib(r), boot_s(r), esc(&failure(r))));
        rows.push_str(&format!("<tr>{tds}</tr>\n"));
    }
    let plots = [
        ("bzImage size (KiB)", plot(report, "KiB", |r| r.build.image_size.map(|s| s as f64 / 1024.0))),
        ("build time (s)", plot(report, "s", |r| r.build.build_seconds)),
        ("boot time (s)", plot(report, "s", |r| r.results.boot.as_ref().map(|b| b.seconds))),
    ];
    let mut figures = String::new();
    for (title, svg) in plots {
        figures.push_str(&format!("<h2>{title}</h2>\n{}\n", svg.unwrap_or_else(|| "<p>No cell measured this (no build or boot stage ran).</p>".into())));
    }
    let names = bench_rows(report);
    if names.is_empty() {
        figures.push_str("<h2>bench ratios</h2>\n<p>No cell ran the bench stage (add \"bench\" to the spec's stages).</p>\n");
    } else {
        figures.push_str(&format!("<h2>bench ratios: libos / stock of the same kernel and profile</h2>\n<p>{}</p>\n", esc(&bench_note(report))));
        for n in &names {
            let svg = plot(report, "x stock", |r| bench_ratio(report, r, n));
            figures.push_str(&format!("<h3>{}</h3>\n{}\n", esc(n), svg.unwrap_or_else(|| "<p>No libos cell has a stock cell to compare with.</p>".into())));
        }
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>xc-convert matrix</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:2px 6px;font-size:90%}}td.why{{max-width:40em;font-size:80%}}</style></head><body>\n<h1>xc-convert matrix</h1>\n<p>{} &mdash; {} cells: {} PASS, {} FAIL, {} without a result</p>\n<table><tr><th>kernel</th><th>version</th><th>profile</th><th>mode</th><th>result</th><th>pull</th><th>analyze</th><th>patch</th><th>config</th><th>build</th><th>boot</th><th>bzImage KiB</th><th>boot s</th><th>failure</th></tr>\n{rows}</table>\n{figures}</body></html>\n",
        esc(&out.display().to_string()),
        report.totals.cells,
        report.totals.pass,
        report.totals.fail,
        report.totals.missing.len()
    )
}

/// One line per (profile, mode) across the kernels in report order, as an
/// inline SVG; None when no cell has the value.
fn plot(report: &MatrixReport, unit: &str, value: impl Fn(&CellRecord) -> Option<f64>) -> Option<String> {
    let mut kernels: Vec<String> = Vec::new();
    for r in &report.cells {
        if !kernels.contains(&r.build.kernel) {
            kernels.push(r.build.kernel.clone());
        }
    }
    let mut series: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for r in &report.cells {
        if let Some(v) = value(r) {
            let x = kernels.iter().position(|k| *k == r.build.kernel).unwrap_or(0);
            series.entry(format!("{} {}", r.build.profile, r.build.mode)).or_default().push((x, v));
        }
    }
    if series.is_empty() {
        return None;
    }
    let max = series.values().flatten().map(|p| p.1).fold(0.0, f64::max) * 1.1 + 1e-9;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 320)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let n = kernels.len();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..max)
            .ok()?;
        chart
            .configure_mesh()
            .x_labels(n.max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    kernels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(unit)
            .draw()
            .ok()?;
        let palette = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
        for (i, (name, points)) in series.iter().enumerate() {
            let c = palette[i % palette.len()];
            let pts: Vec<(f64, f64)> = points.iter().map(|(x, y)| (*x as f64, *y)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2))).ok()?.label(name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled()))).ok()?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw().ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

/// Thresholds for "up by more than".
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// bzImage size, percent.
    pub size_percent: f64,
    /// Boot time, percent.
    pub boot_percent: f64,
}

/// One regression between two reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    /// The cell.
    pub cell: String,
    /// What got worse (`analyze: PASS -> FAIL`, `bzImage +7.1%`).
    pub what: String,
}

/// Every regression of `new` against `old`, cell by cell (cells only in one
/// of them are not compared).
pub fn regressions(old: &MatrixReport, new: &MatrixReport, t: Thresholds) -> Vec<Regression> {
    let mut out = Vec::new();
    for n in &new.cells {
        let Some(o) = old.cells.iter().find(|o| o.id == n.id) else { continue };
        let push = |out: &mut Vec<Regression>, what: String| out.push(Regression { cell: n.id.clone(), what });
        for st in StageName::ALL {
            if let (Some(a), Some(b)) = (o.stage(st), n.stage(st)) {
                if a.status == Status::Pass && b.status == Status::Fail {
                    push(&mut out, format!("{}: PASS -> FAIL ({})", st.name(), b.reason.as_deref().unwrap_or("")));
                }
            }
        }
        let up = |a: f64, b: f64| if a > 0.0 { (b - a) / a * 100.0 } else { 0.0 };
        if let (Some(a), Some(b)) = (o.build.image_size, n.build.image_size) {
            let p = up(a as f64, b as f64);
            if p > t.size_percent {
                push(&mut out, format!("bzImage {} -> {} bytes (+{p:.1}%, threshold {}%)", a, b, t.size_percent));
            }
        }
        if let (Some(a), Some(b)) = (&o.results.boot, &n.results.boot) {
            let p = up(a.seconds, b.seconds);
            if p > t.boot_percent {
                push(&mut out, format!("boot {:.1}s -> {:.1}s (+{p:.1}%, threshold {}%)", a.seconds, b.seconds, t.boot_percent));
            }
        }
    }
    out
}

/// Where a cell's files are, for messages.
pub fn cell_path(out: &Path, id: &str) -> PathBuf {
    cell_dir(out, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::metadata::*;
    use crate::matrix::spec::CellMode;

    fn cell(id: &str, build: Status, size: u64, boot_s: f64) -> CellRecord {
        let st = |stage, status| StageResult { stage, status, seconds: 1.0, reason: (status == Status::Fail).then(|| "make said no | really".to_string()) };
        CellRecord {
            schema: SCHEMA,
            id: id.into(),
            key: "k".into(),
            mode: CellMode::Stock,
            build: BuildInfo { kernel: "6.1.176-1".into(), profile: "minimal".into(), mode: "stock".into(), image_size: Some(size), ..BuildInfo::default() },
            results: Results {
                status: build,
                stages: vec![st(StageName::Pull, Status::Pass), st(StageName::Build, build)],
                problems: vec![],
                boot: Some(BootInfo { passed: true, seconds: boot_s, failures: vec![], console_log: "c".into() }),
                bench: None,
            },
            source: SourceInfo::default(),
            tools: serde_json::Value::Null,
            runtime: RuntimeInfo::default(),
            reproducer_cmdline: String::new(),
        }
    }

    fn report(cells: Vec<CellRecord>) -> MatrixReport {
        MatrixReport { cells, totals: Totals::default() }
    }

    #[test]
    fn regressions_name_a_failed_stage_and_growth_beyond_the_thresholds_only() {
        let t = Thresholds { size_percent: 5.0, boot_percent: 20.0 };
        let old = report(vec![cell("a", Status::Pass, 1000, 10.0), cell("b", Status::Pass, 1000, 10.0), cell("gone", Status::Pass, 1, 1.0)]);
        let new = report(vec![cell("a", Status::Fail, 1040, 11.9), cell("b", Status::Pass, 1060, 12.5), cell("new", Status::Fail, 1, 1.0)]);
        let r = regressions(&old, &new, t);
        let whats: Vec<(&str, &str)> = r.iter().map(|g| (g.cell.as_str(), g.what.as_str())).collect();
        assert_eq!(whats.len(), 3, "{whats:?}");
        assert!(whats[0].0 == "a" && whats[0].1.starts_with("build: PASS -> FAIL (make said no"));
        assert!(whats[1].0 == "b" && whats[1].1.starts_with("bzImage 1000 -> 1060 bytes (+6.0%"));
        assert!(whats[2].0 == "b" && whats[2].1.starts_with("boot 10.0s -> 12.5s (+25.0%"));
        assert!(regressions(&new, &new, t).is_empty());
        // FAIL -> PASS is an improvement, not a regression.
        assert!(regressions(&new, &old, t).iter().all(|g| !g.what.contains("PASS -> FAIL")));
    }

    #[test]
    fn bench_values_are_divided_by_the_stock_cell_of_the_same_kernel_and_profile() {
        let with_bench = |id: &str, mode: CellMode, kernel: &str, ns: f64| {
            let mut c = cell(id, Status::Pass, 1024, 1.0);
            c.mode = mode;
            c.build.kernel = kernel.into();
            c.build.mode = mode.name().into();
            c.results.bench = Some(BenchInfo {
                column: "x".into(),
                accel: "tcg".into(),
                iterations: 1,
                tsc_khz: None,
                rows: vec![BenchRow { name: "getppid".into(), ns }],
                seconds: 1.0,
                console_log: "c".into(),
            });
            c
        };
        let r = report(vec![
            with_bench("a_s", CellMode::Stock, "6.1.170-3", 200.0),
            with_bench("a_l", CellMode::Libos, "6.1.170-3", 100.0),
            with_bench("b_l", CellMode::Libos, "6.1.192-3", 300.0),
        ]);
        assert_eq!(bench_ratio(&r, &r.cells[1], "getppid"), Some(0.5));
        assert_eq!(bench_ratio(&r, &r.cells[0], "getppid"), None, "stock is the baseline");
        assert_eq!(bench_ratio(&r, &r.cells[2], "getppid"), None, "no stock cell of 6.1.192-3");
        let md = markdown(&r, Path::new("/o"));
        assert!(md.contains("| 6.1.170-3 | minimal | libos | x | 100 (0.50x) |"), "{md}");
        assert!(md.contains("| 6.1.192-3 | minimal | libos | x | 300 |"), "{md}");
        assert!(md.contains("TCG"), "the accelerator note: {md}");
        let html = page(&r, Path::new("/o"));
        let bench = &html[html.find("<h2>bench ratios").unwrap()..];
        assert!(bench.contains("<h3>getppid</h3>\n<svg"), "{bench}");
        assert!(!page(&report(vec![cell("a", Status::Pass, 1, 1.0)]), Path::new("/o")).contains("<h3>getppid"));
    }

    #[test]
    fn the_table_escapes_pipes_and_the_page_escapes_markup() {
        let r = report(vec![cell("a", Status::Fail, 1024, 1.0)]);
        let md = markdown(&r, Path::new("/o"));
        assert!(md.contains("build: make said no \\| really"), "{md}");
        let mut c = cell("a", Status::Fail, 1024, 1.0);
        c.build.profile = "<script>".into();
        let html = page(&report(vec![c]), Path::new("/o"));
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(html.contains("<svg"), "the size plot");
    }
}
