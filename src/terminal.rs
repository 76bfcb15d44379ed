//! Text on its way to a terminal or a log: whatever a terminal would obey in it
//! (control characters, bidirectional overrides, line separators) made inert. Text
//! from outside (STS, SSO, portals, sockets, helpers) passes through here before it
//! is shown. Knows nothing else.

/// Whether a terminal would obey `c` rather than show it, or show text out of order:
/// control characters (C0, DEL, C1) and the bidirectional and line-separating code
/// points (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069, U+2028, U+2029).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every character a terminal would obey ([`is_unsafe_char`]: newline,
/// carriage return, ESC, a right-to-left override…) written as an inert escape (`\n`,
/// `\r`, `\t`, `\x1b`, `\u{202e}`), so that it stays on one line and a terminal
/// shows it instead of obeying it. The one function for text from outside (STS, SSO,
/// portals, sockets, helpers) on its way to a terminal or a log.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}
