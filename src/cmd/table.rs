//! Columns for the terminal, measured in display width (a CJK account name takes two
//! cells a character, a combining accent none), never in bytes: the one way elhaz lines
//! up a table, a picker or completion descriptions.

use unicode_width::UnicodeWidthStr;

/// `rows` as lines: each column but the last padded to its widest cell, two spaces
/// between columns, nothing trailing. What a terminal would obey in a cell (a config's
/// description, a name from a portal) is shown escaped (`\x1b`), never obeyed.
pub(crate) fn columns<S: AsRef<str>>(rows: &[Vec<S>]) -> Vec<String> {
    columns_at_least(rows, &[])
}

/// [`columns`], column `c` at least `min[c]` cells wide.
pub(crate) fn columns_at_least<S: AsRef<str>>(rows: &[Vec<S>], min: &[usize]) -> Vec<String> {
    let rows: Vec<Vec<std::borrow::Cow<'_, str>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::terminal::escape_controls(c.as_ref()))
                .collect()
        })
        .collect();
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.as_ref().width())
                .chain(min.get(c).copied())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let cell = cell.as_ref();
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(cell.width()) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.truncate(line.trim_end().len());
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_cell_are_shown_escaped_and_line_up() {
        let rows = vec![vec!["NAME", "DETAIL"], vec!["esc\u{1b}[31m", "red\tTab"]];
        let lines = columns(&rows);
        assert_eq!(lines, ["NAME         DETAIL", "esc\\x1b[31m  red\\tTab"]);
        assert!(
            lines
                .iter()
                .all(|l| !l.contains('\u{1b}') && !l.contains('\t'))
        );
    }

    #[test]
    fn wide_characters_line_up_by_cells_not_bytes() {
        let rows = vec![
            vec!["ACCOUNT", "ID", "ROLE"],
            vec!["開発", "111122223333", "Admin"],
            vec!["café", "4", "ReadOnly"],
        ];
        let lines = columns(&rows);
        assert_eq!(
            lines,
            [
                "ACCOUNT  ID            ROLE",
                "開発     111122223333  Admin",
                "café     4             ReadOnly",
            ]
        );
        // Every ROLE starts in the same terminal column.
        let at: Vec<usize> = lines
            .iter()
            .map(|l| l[..l.rfind("  ").unwrap()].width())
            .collect();
        assert!(at.windows(2).all(|w| w[0] == w[1]), "{lines:?}");
    }

    #[test]
    fn an_empty_last_cell_leaves_no_trailing_space() {
        assert_eq!(columns(&[vec!["a", ""], vec!["bbb", "x"]]), ["a", "bbb  x"]);
    }
}
