//! Just enough A1 notation: where a range Google answered for starts and ends,
//! column names, quoted sheet titles.

/// A cell's column (from 0) and row (from 1).
pub struct Start {
    pub column: u32,
    pub row: u32,
}

pub struct End {
    pub column: Option<u32>,
    pub row: Option<u32>,
}

/// The sheet part (as Google wrote it, quoted if need be), start and end of
/// a range such as `'Q1 Sales'!B2:F40`.
pub fn bounds(range: &str) -> (String, Start, End) {
    let (sheet, cells) = match range.rfind('!') {
        Some(at) => (&range[..at], &range[at + 1..]),
        None => (range, ""),
    };
    let mut ends = cells.split(':');
    let (start_column, start_row) = cell(ends.next().unwrap_or_default());
    let (end_column, end_row) = match ends.next() {
        Some(end) => cell(end),
        None => (start_column, start_row),
    };
    let start = Start { column: start_column.unwrap_or(0), row: start_row.unwrap_or(1) };
    (sheet.to_string(), start, End { column: end_column, row: end_row })
}

/// `B12` → (1, 12); either part may be missing (`B`, `12`).
fn cell(text: &str) -> (Option<u32>, Option<u32>) {
    let letters: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
    let digits = &text[letters.len()..];
    let column = (!letters.is_empty()).then(|| {
        let number = letters
            .to_ascii_uppercase()
            .bytes()
            .fold(0u32, |n, b| n.saturating_mul(26).saturating_add(u32::from(b - b'A' + 1)));
        number - 1
    });
    (column, digits.parse().ok())
}

/// Column 0 → `A`, 25 → `Z`, 26 → `AA`.
pub fn column(index: u32) -> String {
    let mut name = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        name.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

/// A sheet title as a range, quoted: `'Q1 Sales'`, `'A1'` (which unquoted is a cell).
pub fn quote_sheet(title: &str) -> String {
    format!("'{}'", title.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_google_answers_give_their_sheet_start_and_end() {
        let (sheet, start, end) = bounds("'Q1 Sales'!B2:AA40");
        assert_eq!((sheet.as_str(), start.column, start.row), ("'Q1 Sales'", 1, 2));
        assert_eq!((end.column, end.row), (Some(26), Some(40)));
        let (sheet, start, end) = bounds("Contacts!C7");
        assert_eq!(
            (sheet.as_str(), start.column, start.row, end.column, end.row),
            ("Contacts", 2, 7, Some(2), Some(7))
        );
        assert_eq!([column(0), column(25), column(26), column(701), column(702)], ["A", "Z", "AA", "ZZ", "AAA"]);
        assert_eq!(quote_sheet("It's"), "'It''s'");
    }
}
