//! The terminal table: one line per row, fitted to the terminal's width (or `COLUMNS`), times shortened, long cells
//! cut with `…` rather than wrapped, severity coloured on a colour terminal. `--wide` shows every cell whole.

use comfy_table::{Cell, Color, ContentArrangement, Table as Grid};
use secgraph::output::Table;
use std::io::Write;

/// How the table is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// The width to fit; `None` draws every column at its natural width.
    pub width: Option<usize>,
    /// Colour severity (a terminal, and `NO_COLOR` unset).
    pub color: bool,
    /// Every cell whole, times as the service wrote them.
    pub wide: bool,
}

impl Style {
    /// The style for stdout: its terminal width (or `COLUMNS` when set), colour only on a terminal without
    /// `NO_COLOR`.
    pub fn for_stdout(wide: bool) -> Style {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|c| *c >= 20);
        let width = columns.or_else(|| tty.then(|| Grid::new().width().map(usize::from)).flatten().filter(|w| *w >= 20));
        Style {
            width: if wide { None } else { width },
            color: tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            wide,
        }
    }
}

/// Narrowest a text column is cut to before columns are dropped instead (times are never cut).
const MIN_COLUMN: usize = 12;
/// Narrowest a column that says what a row is about (a title, a name) is cut to.
const MIN_TEXT_COLUMN: usize = 28;
/// Widest cell shown without `--wide` (however wide the terminal).
const MAX_CELL: usize = 80;

/// `2026-05-27T10:40:29.0590000Z` → `2026-05-27 10:40:29Z` (UTC kept, fraction dropped); other text unchanged.
fn short_time(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let looks = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s.ends_with("+00:00"));
    looks.then(|| format!("{} {}Z", &s[..10], &s[11..19]))
}

/// Whether `s` is a time as [`short_time`] writes it.
fn short_time_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20 && b[4] == b'-' && b[10] == b' ' && b[19] == b'Z'
}

fn one_line(s: &str) -> String {
    if s.contains(['\n', '\r', '\t']) {
        s.replace("\r\n", " ⏎ ").replace(['\n', '\r'], " ⏎ ").replace('\t', " ")
    } else {
        s.to_string()
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn severity_color(s: &str) -> Option<Color> {
    match s.to_ascii_lowercase().as_str() {
        "high" | "critical" => Some(Color::Red),
        "medium" => Some(Color::Yellow),
        "low" => Some(Color::Cyan),
        "informational" => Some(Color::DarkGrey),
        _ => None,
    }
}

/// Column widths that fit `width` (borders included). Columns are kept from the left (a query's columns come most
/// important first) while their minimum widths fit; the room left widens them in that order. Returns the widths of
/// the columns kept.
fn fit(natural: &[usize], minimum: &[usize], width: usize) -> Vec<usize> {
    // "│ a ┆ b │": one border plus three characters per column.
    let budget = |n: usize| width.saturating_sub(1 + 3 * n);
    let kept = |minimum: &[usize]| {
        let mut n = natural.len();
        while n > 1 && minimum[..n].iter().sum::<usize>() > budget(n) {
            n -= 1;
        }
        n
    };
    let mut n = kept(minimum);
    // A column that says what a row is about (a larger minimum) is narrowed to the common minimum rather than
    // dropped.
    let mut relaxed = minimum.to_vec();
    for (i, m) in relaxed.iter_mut().enumerate().skip(n) {
        *m = (*m).min(natural[i].min(MIN_COLUMN));
    }
    let minimum: &[usize] = if kept(&relaxed) > n {
        n = kept(&relaxed);
        &relaxed
    } else {
        minimum
    };
    let mut widths: Vec<usize> = minimum[..n].iter().zip(&natural[..n]).map(|(m, w)| (*m).min(*w)).collect();
    // The room left goes to the columns in order (most important first), each up to its natural width.
    let mut room = budget(n).saturating_sub(widths.iter().sum());
    for (i, w) in widths.iter_mut().enumerate() {
        let grow = natural[i].saturating_sub(*w).min(room);
        *w += grow;
        room -= grow;
    }
    if n == 1 {
        widths[0] = widths[0].min(budget(1).max(MIN_COLUMN));
    }
    widths
}

/// Writes the columns `cols` of `table`.
pub fn write(w: &mut dyn Write, table: &Table, cols: &[usize], style: Style) -> std::io::Result<()> {
    if table.is_empty() {
        return writeln!(w, "(no rows)");
    }
    let header: Vec<String> = cols.iter().map(|i| table.column_names()[*i].clone()).collect();
    let cells: Vec<Vec<String>> = (0..table.len())
        .map(|r| {
            cols.iter()
                .map(|c| {
                    let s = one_line(&table.cell_text(r, *c));
                    match (style.wide, short_time(&s)) {
                        (false, Some(t)) => t,
                        _ => s,
                    }
                })
                .collect()
        })
        .collect();
    let natural: Vec<usize> = (0..cols.len())
        .map(|c| {
            let longest = cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
            let cap = if style.wide { usize::MAX } else { MAX_CELL };
            longest.min(cap).max(header[c].chars().count().min(cap))
        })
        .collect();
    // A column of times keeps its whole width: a time cut in the middle reads as another time.
    let minimum: Vec<usize> = (0..cols.len())
        .map(|c| {
            let times = !style.wide && cells.iter().all(|r| r[c].is_empty() || short_time_shape(&r[c]));
            let h = header[c].to_ascii_lowercase();
            // A time cut in the middle reads as another time; an id cut is no id at all.
            if times || h == "id" {
                natural[c]
            } else if h.contains("title") || h.ends_with("name") || h.contains("description") || h.contains("commandline") {
                // What a row is about: kept readable, other columns make way first.
                natural[c].min(MIN_TEXT_COLUMN)
            } else {
                natural[c].min(MIN_COLUMN)
            }
        })
        .collect();
    let widths = match style.width {
        Some(width) => fit(&natural, &minimum, width),
        None => natural,
    };
    let shown = widths.len();
    // The key column is what the next command needs (`alert update ID`): when it would be dropped, it goes first
    // and another column makes way.
    if let Some(id) = header.iter().position(|h| h == "id")
        && id >= shown
    {
        let mut reordered = vec![cols[id]];
        reordered.extend(cols.iter().enumerate().filter(|(i, _)| *i != id).map(|(_, c)| *c));
        return write(w, table, &reordered, style);
    }
    let mut grid = Grid::new();
    grid.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    grid.set_content_arrangement(ContentArrangement::Disabled);
    if !style.color {
        grid.force_no_tty();
    } else {
        grid.enforce_styling();
    }
    grid.set_header(header.iter().zip(&widths).map(|(h, w)| Cell::new(cut(h, *w))));
    for row in &cells {
        grid.add_row(row.iter().zip(&widths).enumerate().map(|(c, (s, w))| {
            let text = if style.wide { s.clone() } else { cut(s, *w) };
            let mut cell = Cell::new(text);
            if style.color
                && header[c].eq_ignore_ascii_case("severity")
                && let Some(color) = severity_color(s)
            {
                cell = cell.fg(color);
            }
            cell
        }));
    }
    writeln!(w, "{grid}")?;
    if shown < cols.len() {
        writeln!(
            w,
            "({} more column(s) not shown: {}; use --columns, --wide or a wider terminal)",
            cols.len() - shown,
            header[shown..].join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shortened_and_cells_cut() {
        assert_eq!(short_time("2026-05-27T10:40:29.0590000Z").as_deref(), Some("2026-05-27 10:40:29Z"));
        assert_eq!(short_time("2026-05-27"), None);
        assert_eq!(short_time("not a time at all, no"), None);
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(one_line("a\nb"), "a ⏎ b");
    }

    #[test]
    fn a_narrow_table_keeps_the_id() {
        let mut t = Table::default();
        for i in 0..3 {
            t.push(&serde_json::json!({
                "title": format!("a long alert title number {i} that takes room"),
                "severity": "high",
                "serviceSource": "microsoftDefenderForEndpoint",
                "category": "CredentialAccess",
                "id": format!("da0123456789abcdef{i}"),
            }));
        }
        let cols: Vec<usize> = (0..t.column_names().len()).collect();
        let mut out = Vec::new();
        let style = Style {
            width: Some(60),
            color: false,
            wide: false,
        };
        write(&mut out, &t, &cols, style).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("da0123456789abcdef0"), "{text}");
        assert!(text.contains("not shown"), "{text}");
    }

    #[test]
    fn columns_keep_their_minimum_then_share_the_room_and_drop_from_the_right() {
        // 3 columns need 1 + 9 characters of borders.
        assert_eq!(fit(&[20, 40, 10], &[20, 12, 10], 200), vec![20, 40, 10]);
        assert_eq!(
            fit(&[20, 40, 10], &[20, 12, 10], 60),
            vec![20, 20, 10],
            "the room left widens the title"
        );
        assert_eq!(fit(&[20, 40, 30], &[20, 12, 12], 70), vec![20, 28, 12], "in column order");
        assert_eq!(fit(&[20, 40, 10], &[20, 12, 10], 45), vec![20, 18], "the last column goes first");
        let w = fit(&[20, 8, 10, 45, 29, 10, 41, 32], &[20, 8, 10, 12, 12, 10, 12, 12], 80);
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w.iter().sum::<usize>() + 1 + 3 * w.len() <= 80, "{w:?}");
        assert_eq!(w[0], 20, "a time is never cut");
        // A title that would be dropped at its own minimum is narrowed instead.
        let w = fit(&[20, 13, 10, 45, 29], &[20, 13, 10, 28, 12], 80);
        assert_eq!(w.len(), 4, "{w:?}");
        assert_eq!(w[3], 80 - 13 - 43, "the title takes the room left");
    }
}
