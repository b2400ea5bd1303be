//! Tables and how they are written: aligned markdown (for `docs/results/*.md` and the
//! terminal) and CSV (for `docs/results/*.csv`).
//!
//! Everything rendered here is a pure function of the [`Table`]: no timestamps, host names or
//! timings, so regenerating a table with the same inputs gives byte-identical files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Horizontal alignment of a column in markdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text columns.
    Left,
    /// Numeric columns.
    Right,
}

/// One column of a [`Table`].
#[derive(Clone, Debug)]
pub(crate) struct Column {
    /// Machine name: the CSV header (snake_case, ASCII).
    pub(crate) key: &'static str,
    /// Human header for markdown.
    pub(crate) title: &'static str,
    /// What the column holds, listed under the markdown table.
    pub(crate) doc: &'static str,
    /// Markdown alignment.
    pub(crate) align: Align,
}

impl Column {
    /// A left-aligned (text) column.
    pub(crate) const fn text(key: &'static str, title: &'static str, doc: &'static str) -> Self {
        Column {
            key,
            title,
            doc,
            align: Align::Left,
        }
    }

    /// A right-aligned (numeric) column.
    pub(crate) const fn num(key: &'static str, title: &'static str, doc: &'static str) -> Self {
        Column {
            key,
            title,
            doc,
            align: Align::Right,
        }
    }
}

/// A result table: what a scenario produces and `reproduce` writes.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    /// File stem (`formats` → `formats.md`, `formats.csv`); also the scenario name.
    pub(crate) name: &'static str,
    /// Markdown title.
    pub(crate) title: String,
    /// Markdown paragraphs shown before the table.
    pub(crate) intro: Vec<String>,
    /// The columns, in order.
    pub(crate) columns: Vec<Column>,
    /// The cells, already formatted; each row has one cell per column.
    pub(crate) rows: Vec<Vec<String>>,
    /// Markdown bullet points shown after the column list.
    pub(crate) notes: Vec<String>,
}

impl Table {
    /// Checks that every row has one cell per column.
    ///
    /// # Errors
    ///
    /// Names the first ragged row.
    pub(crate) fn validate(&self) -> Result<()> {
        for (i, row) in self.rows.iter().enumerate() {
            anyhow::ensure!(
                row.len() == self.columns.len(),
                "table {}: row {i} has {} cells, expected {}",
                self.name,
                row.len(),
                self.columns.len()
            );
        }
        Ok(())
    }

    /// The whole markdown document: title, intro, table, column list, notes.
    pub(crate) fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {}\n", self.title);
        for p in &self.intro {
            let _ = writeln!(out, "{p}\n");
        }
        out.push_str(&markdown_grid(&self.columns, &self.rows));
        out.push_str("\nColumns:\n\n");
        for c in &self.columns {
            let _ = writeln!(out, "- `{}`: {}", c.key, c.doc);
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    /// The CSV document: a header of column keys, then one line per row (RFC 4180 quoting,
    /// `\n` line ends).
    pub(crate) fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<&str> = self.columns.iter().map(|c| c.key).collect();
        push_csv_line(&mut out, header.iter().copied());
        for row in &self.rows {
            push_csv_line(&mut out, row.iter().map(String::as_str));
        }
        out
    }
}

/// An aligned markdown table (header, separator, rows), padded so the raw text reads as a
/// grid too. Widths count `char`s.
pub(crate) fn markdown_grid(columns: &[Column], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns
        .iter()
        .map(|c| c.title.chars().count().max(3))
        .collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(escape_md(cell).chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = (String, Align)>| {
        out.push('|');
        for ((cell, align), w) in cells.zip(&widths) {
            let pad = w.saturating_sub(cell.chars().count());
            out.push(' ');
            match align {
                Align::Left => {
                    out.push_str(&cell);
                    out.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(&cell);
                }
            }
            out.push_str(" |");
        }
        out.push('\n');
    };
    line(
        &mut out,
        &mut columns.iter().map(|c| (c.title.to_string(), c.align)),
    );
    out.push('|');
    for (c, w) in columns.iter().zip(&widths) {
        let dashes = "-".repeat(w.saturating_sub(1));
        match c.align {
            Align::Left => {
                let _ = write!(out, " {dashes}- |");
            }
            Align::Right => {
                let _ = write!(out, " {dashes}: |");
            }
        }
    }
    out.push('\n');
    for row in rows {
        line(
            &mut out,
            &mut row
                .iter()
                .zip(columns)
                .map(|(cell, c)| (escape_md(cell), c.align)),
        );
    }
    out
}

/// Escapes the one character that breaks a markdown table cell.
fn escape_md(cell: &str) -> String {
    cell.replace('|', "\\|")
}

fn push_csv_line<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push('\n');
}

/// Writes `contents` to `dir/file_name`, with the path in the error.
///
/// # Errors
///
/// Any I/O error, with the path as context.
pub(crate) fn write_file(dir: &Path, file_name: &str, contents: &str) -> Result<PathBuf> {
    let path = dir.join(file_name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes `<name>.md` and `<name>.csv` of `table` into `dir`; returns the two paths.
///
/// # Errors
///
/// A ragged table, or any I/O error (with the path).
pub(crate) fn write_table(dir: &Path, table: &Table) -> Result<[PathBuf; 2]> {
    table.validate()?;
    let md = write_file(dir, &format!("{}.md", table.name), &table.to_markdown())?;
    let csv = write_file(dir, &format!("{}.csv", table.name), &table.to_csv())?;
    Ok([md, csv])
}

/// Formats a finite or non-finite `f64` with `decimals` fixed decimal places; NaN and the
/// infinities read `NaN`, `inf`, `-inf`.
pub(crate) fn fixed(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        "NaN".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        // Avoid "-0.00" for tiny negatives.
        let s = format!("{x:.decimals$}");
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].to_string()
        } else {
            s
        }
    }
}

/// Formats `x` in scientific notation with three significant digits (`1.23e-4`); exact zero
/// reads `0`, and NaN and the infinities read `NaN`, `inf`, `-inf`.
pub(crate) fn sci3(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if x == 0.0 {
        "0".to_string()
    } else {
        format!("{x:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            name: "demo",
            title: "Demo".to_string(),
            intro: vec!["Intro.".to_string()],
            columns: vec![
                Column::text("name", "name", "the name"),
                Column::num("value", "value", "the value"),
            ],
            rows: vec![
                vec!["a|b".to_string(), "1.00".to_string()],
                vec!["x, \"y\"".to_string(), "-12.50".to_string()],
            ],
            notes: vec!["A note.".to_string()],
        }
    }

    #[test]
    fn markdown_is_aligned_and_escaped() {
        let md = sample().to_markdown();
        let expected = "\
# Demo

Intro.

| name   |  value |
| ------ | -----: |
| a\\|b   |   1.00 |
| x, \"y\" | -12.50 |

Columns:

- `name`: the name
- `value`: the value

Notes:

- A note.
";
        assert_eq!(md, expected);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(
            sample().to_csv(),
            "name,value\na|b,1.00\n\"x, \"\"y\"\"\",-12.50\n"
        );
    }

    #[test]
    fn ragged_rows_are_rejected() {
        let mut t = sample();
        t.rows.push(vec!["only one".to_string()]);
        let err = t.validate().unwrap_err().to_string();
        assert!(err.contains("row 2"), "{err}");
    }

    #[test]
    fn number_formats_are_fixed() {
        assert_eq!(fixed(1.0 / 3.0, 2), "0.33");
        assert_eq!(fixed(-0.001, 2), "0.00");
        assert_eq!(fixed(f64::NAN, 2), "NaN");
        assert_eq!(fixed(f64::NEG_INFINITY, 2), "-inf");
        assert_eq!(sci3(0.000123456), "1.23e-4");
        assert_eq!(sci3(0.5), "5.00e-1");
        assert_eq!(sci3(0.0), "0");
        assert_eq!(sci3(f64::INFINITY), "inf");
    }
}
