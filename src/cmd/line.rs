//! One line typed on the terminal (a config field, a config name, an MFA code), edited
//! with the keys of the shell's own line editor: Ctrl-A/E (or Home/End) to either end,
//! Ctrl-B/F and the arrows by a character, Alt-B/F and Ctrl-arrows by a word,
//! Backspace/Ctrl-H and Delete, Ctrl-U and Ctrl-K to kill to either end, Ctrl-W the
//! word before the cursor, Alt-D the word after it, Ctrl-Y to put back what was last
//! killed. Enter submits (an answer `check` refuses is shown the reason and kept for
//! editing); Ctrl-C, Esc, and Ctrl-D on an empty line (unless the question gives the
//! end of input an answer, as a confirmation's no) end elhaz with the quiet 130.
//!
//! inquire draws the pickers; its text input takes every Ctrl key as a letter (Ctrl-U
//! typed a `u`) and has no key map to change, so text prompts are this small editor,
//! drawn as inquire draws its prompts, on the same terminal library (crossterm). The
//! prompt is written to the controlling terminal, never to stdout or stderr, and a
//! masked answer is shown as one `*` per character and wiped from memory.

use std::io::Write;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, queue, style, terminal};
use unicode_width::UnicodeWidthChar;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Kind, Result};

/// A check of the answer: why it is refused.
type Check<'a> = Box<dyn Fn(&str) -> std::result::Result<(), String> + 'a>;

/// A question for one line of text.
pub(crate) struct Line<'a> {
    label: &'a str,
    help: Option<&'a str>,
    initial: &'a str,
    masked: bool,
    check: Option<Check<'a>>,
    /// What Ctrl-D on an empty line answers (None: it leaves, as Ctrl-C does).
    at_end: Option<&'a str>,
}

/// What a key did to the line.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Edit,
    Submit,
    /// Ctrl-C, Esc.
    Quit,
    /// Ctrl-D on an empty line: the end of input.
    End,
}

/// The text being edited, its cursor (in characters) and the kill buffer.
#[derive(Default)]
struct Editor {
    text: Vec<char>,
    cursor: usize,
    killed: Vec<char>,
    /// The last key killed text: the next kill adds to what it killed (as readline's
    /// kill ring does), so Ctrl-W twice then Ctrl-Y puts both words back.
    killing: bool,
    /// `killing`, as it was before the key being handled.
    chaining: bool,
}

impl Drop for Editor {
    fn drop(&mut self) {
        self.text.zeroize();
        self.killed.zeroize();
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

impl Editor {
    fn new(initial: &str) -> Editor {
        // Room up front: a reallocation would leave a copy of a secret behind.
        let mut text = Vec::with_capacity(initial.len().max(256));
        text.extend(initial.chars());
        Editor {
            cursor: text.len(),
            text,
            killed: Vec::with_capacity(256),
            killing: false,
            chaining: false,
        }
    }

    fn insert(&mut self, c: char) {
        // Never a control character: the terminal would obey it when the line is shown.
        if !crate::terminal::is_unsafe_char(c) {
            self.text.insert(self.cursor, c);
            self.cursor += 1;
        }
    }

    /// Removes `from..to` into the kill buffer (added to it, before or after, when the
    /// key before killed too); the cursor goes to `from`.
    fn kill(&mut self, from: usize, to: usize) {
        if from >= to {
            return;
        }
        let backward = to == self.cursor && from < self.cursor;
        if !self.chaining {
            self.killed.zeroize();
        }
        if self.chaining && backward {
            // Room for both first: a reallocation would leave a copy behind.
            self.killed.reserve(to - from);
            let before: Vec<char> = self.text[from..to].to_vec();
            self.killed.splice(0..0, before.iter().copied());
            let mut before = before;
            before.zeroize();
            self.text.drain(from..to);
        } else {
            self.killed.extend(self.text.drain(from..to));
        }
        self.cursor = from;
        self.killing = true;
    }

    /// Where the word before the cursor starts (alphanumeric words, as Alt-B).
    fn word_left(&self) -> usize {
        let mut i = self.cursor;
        while i > 0 && !is_word(self.text[i - 1]) {
            i -= 1;
        }
        while i > 0 && is_word(self.text[i - 1]) {
            i -= 1;
        }
        i
    }

    /// Where the word after the cursor ends (as Alt-F).
    fn word_right(&self) -> usize {
        let mut i = self.cursor;
        while i < self.text.len() && !is_word(self.text[i]) {
            i += 1;
        }
        while i < self.text.len() && is_word(self.text[i]) {
            i += 1;
        }
        i
    }

    /// Where Ctrl-W stops: back over blanks, then to the previous blank (the
    /// terminal's and the shell's unix-word-rubout).
    fn rubout_start(&self) -> usize {
        let mut i = self.cursor;
        while i > 0 && self.text[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && !self.text[i - 1].is_whitespace() {
            i -= 1;
        }
        i
    }

    fn key(&mut self, key: KeyEvent) -> Step {
        self.chaining = std::mem::take(&mut self.killing);
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let end = self.text.len();
        match key.code {
            KeyCode::Enter => return Step::Submit,
            KeyCode::Esc => return Step::Quit,
            KeyCode::Char(c) if ctrl => return self.control(c),
            KeyCode::Char(c) if alt => match c {
                'b' => self.cursor = self.word_left(),
                'f' => self.cursor = self.word_right(),
                'd' => self.kill(self.cursor, self.word_right()),
                _ => {}
            },
            KeyCode::Char(c) => self.insert(c),
            KeyCode::Backspace if alt => self.kill(self.word_left(), self.cursor),
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.text.remove(self.cursor);
            }
            KeyCode::Delete if self.cursor < end => {
                self.text.remove(self.cursor);
            }
            KeyCode::Left if ctrl || alt => self.cursor = self.word_left(),
            KeyCode::Right if ctrl || alt => self.cursor = self.word_right(),
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(end),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = end,
            _ => {}
        }
        Step::Edit
    }

    /// Ctrl and a letter: an editing key, or nothing (never the letter itself).
    fn control(&mut self, c: char) -> Step {
        let end = self.text.len();
        match c {
            'c' | 'g' => return Step::Quit,
            'd' if self.text.is_empty() => return Step::End,
            'j' | 'm' => return Step::Submit,
            'a' => self.cursor = 0,
            'e' => self.cursor = end,
            'b' => self.cursor = self.cursor.saturating_sub(1),
            'f' => self.cursor = (self.cursor + 1).min(end),
            'd' if self.cursor < end => {
                self.text.remove(self.cursor);
            }
            'h' if self.cursor > 0 => {
                self.cursor -= 1;
                self.text.remove(self.cursor);
            }
            'u' => self.kill(0, self.cursor),
            'k' => self.kill(self.cursor, end),
            'w' => self.kill(self.rubout_start(), self.cursor),
            'y' => {
                let killed = std::mem::take(&mut self.killed);
                for &c in &killed {
                    self.insert(c);
                }
                self.killed = killed;
            }
            _ => {}
        }
        Step::Edit
    }

    /// Pasted text, on one line: each line break (`\n`, `\r\n`, or the `\r` a terminal
    /// sends) and tab a space, so lines pasted together stay visibly apart (and a
    /// value that is not one is refused by its check); the last line break dropped.
    fn paste(&mut self, text: &str) {
        self.killing = false;
        let text = text.trim_end_matches(['\r', '\n']);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\r' && chars.peek() == Some(&'\n') {
                continue;
            }
            self.insert(if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            });
        }
    }

    fn value(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(self.text.len() * 4));
        s.extend(self.text.iter());
        s
    }
}

/// The terminal in raw mode (and bracketed paste) for as long as it lives.
struct Raw(std::fs::File);

impl Raw {
    fn start() -> std::io::Result<Raw> {
        let tty = std::fs::OpenOptions::new().write(true).open("/dev/tty")?;
        terminal::enable_raw_mode()?;
        let mut raw = Raw(tty);
        queue!(raw.0, crossterm::event::EnableBracketedPaste)?;
        Ok(raw)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = queue!(self.0, crossterm::event::DisableBracketedPaste);
        let _ = self.0.flush();
        let _ = terminal::disable_raw_mode();
    }
}

/// Display width of `text`.
fn width(text: impl Iterator<Item = char>) -> usize {
    text.map(|c| c.width().unwrap_or(0)).sum()
}

/// Rows a line of `w` columns takes on a terminal `cols` wide (at least one).
fn rows(w: usize, cols: usize) -> usize {
    w.div_ceil(cols).max(1)
}

/// What is on the screen: the rows from the top of the prompt to the cursor.
#[derive(Default)]
struct Drawn {
    cursor_row: usize,
}

impl<'a> Line<'a> {
    pub(crate) fn new(label: &'a str) -> Line<'a> {
        Line {
            label,
            help: None,
            initial: "",
            masked: false,
            check: None,
            at_end: None,
        }
    }

    /// What Ctrl-D on an empty line answers, as the end of input (else it leaves).
    pub(crate) fn at_end_of_input(mut self, answer: &'a str) -> Self {
        self.at_end = Some(answer);
        self
    }

    /// A line shown under the prompt, in brackets.
    pub(crate) fn help(mut self, help: &'a str) -> Self {
        self.help = Some(help);
        self
    }

    /// The text the line starts with, for editing.
    pub(crate) fn initial(mut self, text: &'a str) -> Self {
        self.initial = text;
        self
    }

    /// Show a `*` for each character typed.
    pub(crate) fn masked(mut self) -> Self {
        self.masked = true;
        self
    }

    /// Refuse an answer, with the reason, and keep asking.
    pub(crate) fn check(
        mut self,
        check: impl Fn(&str) -> std::result::Result<(), String> + 'a,
    ) -> Self {
        self.check = Some(Box::new(check));
        self
    }

    /// Asks, and returns the line once submitted and accepted. Ctrl-C, Esc and
    /// Ctrl-D on an empty line (unless [`Line::at_end_of_input`]) are the quiet
    /// [`Kind::Interrupted`].
    pub(crate) fn ask(self) -> Result<Zeroizing<String>> {
        let cannot =
            |e: std::io::Error| Error::usage(format!("cannot prompt on the terminal: {e}"));
        let mut raw = Raw::start().map_err(cannot)?;
        let mut ed = Editor::new(self.initial);
        let mut drawn = Drawn::default();
        let mut refused: Option<String> = None;
        loop {
            self.draw(&mut raw.0, &ed, refused.as_deref(), &mut drawn)
                .map_err(cannot)?;
            let step = match crossterm::event::read().map_err(cannot)? {
                Event::Key(k) if k.kind != KeyEventKind::Release => ed.key(k),
                Event::Paste(text) => {
                    ed.paste(&text);
                    Step::Edit
                }
                _ => Step::Edit,
            };
            match step {
                Step::Edit => {}
                Step::End if self.at_end.is_some() => {
                    let answer = Editor::new(self.at_end.unwrap_or_default());
                    self.finish(&mut raw.0, &drawn, Some(&answer))
                        .map_err(cannot)?;
                    return Ok(answer.value());
                }
                Step::Quit | Step::End => {
                    self.finish(&mut raw.0, &drawn, None).map_err(cannot)?;
                    return Err(Error::new(Kind::Interrupted, ""));
                }
                Step::Submit => {
                    let value = ed.value();
                    match self.check.as_ref().map(|c| c(&value)) {
                        Some(Err(why)) => refused = Some(why),
                        _ => {
                            self.finish(&mut raw.0, &drawn, Some(&ed)).map_err(cannot)?;
                            return Ok(value);
                        }
                    }
                }
            }
        }
    }

    /// The line as shown: the typed text, or one `*` a character.
    fn shown(&self, text: &[char]) -> String {
        if self.masked {
            "*".repeat(text.len())
        } else {
            text.iter().collect()
        }
    }

    /// Draws the prompt over the previous drawing: the reason the last answer was
    /// refused, `? label text`, the help; the cursor where the editor's is.
    fn draw(
        &self,
        tty: &mut std::fs::File,
        ed: &Editor,
        refused: Option<&str>,
        drawn: &mut Drawn,
    ) -> std::io::Result<()> {
        let cols = usize::from(terminal::size().map(|(c, _)| c).unwrap_or(80).max(1));
        self.clear(tty, drawn)?;
        let mut row = 0;
        if let Some(why) = refused {
            let why = crate::terminal::escape_controls(why);
            queue!(
                tty,
                style::SetForegroundColor(style::Color::Red),
                style::Print(format!("# {why}")),
                style::ResetColor,
                style::Print("\r\n")
            )?;
            row += rows(width(why.chars()) + 2, cols);
        }
        let prefix = format!("? {} ", self.label);
        let text = self.shown(&ed.text);
        let line_width = width(prefix.chars()) + width(text.chars());
        queue!(
            tty,
            style::SetForegroundColor(style::Color::Green),
            style::Print("? "),
            style::ResetColor,
            style::Print(format!("{} {text}", self.label))
        )?;
        // A line that fills its last row exactly: the cursor goes to a row of its own.
        if line_width.is_multiple_of(cols) {
            queue!(tty, style::Print("\r\n"))?;
        }
        let at = width(prefix.chars()) + width(self.shown(&ed.text[..ed.cursor]).chars());
        let cursor_row = row + at / cols;
        row += line_width / cols;
        if let Some(help) = self.help {
            queue!(
                tty,
                style::Print("\r\n"),
                style::SetForegroundColor(style::Color::Cyan),
                style::Print(format!("[{help}]")),
                style::ResetColor
            )?;
            row += rows(width(help.chars()) + 2, cols);
        }
        if row > cursor_row {
            queue!(tty, cursor::MoveUp((row - cursor_row) as u16))?;
        }
        queue!(tty, cursor::MoveToColumn((at % cols) as u16))?;
        drawn.cursor_row = cursor_row;
        tty.flush()
    }

    /// Moves to the top of what was drawn and clears it.
    fn clear(&self, tty: &mut std::fs::File, drawn: &Drawn) -> std::io::Result<()> {
        if drawn.cursor_row > 0 {
            queue!(tty, cursor::MoveUp(drawn.cursor_row as u16))?;
        }
        queue!(
            tty,
            style::Print("\r"),
            terminal::Clear(terminal::ClearType::FromCursorDown)
        )
    }

    /// Leaves the answer on the screen, as inquire does (`> label answer`), or
    /// nothing when the question was left; the cursor on the next line.
    fn finish(
        &self,
        tty: &mut std::fs::File,
        drawn: &Drawn,
        answer: Option<&Editor>,
    ) -> std::io::Result<()> {
        self.clear(tty, drawn)?;
        if let Some(ed) = answer {
            queue!(
                tty,
                style::SetForegroundColor(style::Color::Green),
                style::Print("> "),
                style::ResetColor,
                style::Print(format!("{} ", self.label)),
                style::SetForegroundColor(style::Color::Cyan),
                style::Print(self.shown(&ed.text)),
                style::ResetColor,
                style::Print("\r\n")
            )?;
        }
        tty.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(ed: &mut Editor, keys: &[KeyEvent]) -> String {
        for k in keys {
            ed.key(*k);
        }
        ed.text.iter().collect()
    }

    fn ch(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }
    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }
    fn alt(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)
    }
    fn text(s: &str) -> Vec<KeyEvent> {
        s.chars().map(ch).collect()
    }

    #[test]
    fn ctrl_u_kills_to_the_start_and_types_no_letter() {
        let mut ed = Editor::new("");
        let mut keys = text("2 hours");
        keys.push(ctrl('u'));
        keys.extend(text("2h"));
        assert_eq!(typed(&mut ed, &keys), "2h");
        // From the middle: only what is before the cursor.
        let mut ed = Editor::new("abcdef");
        ed.key(KeyEvent::new(KeyCode::Left, KeyModifiers::NONE));
        ed.key(KeyEvent::new(KeyCode::Left, KeyModifiers::NONE));
        assert_eq!(typed(&mut ed, &[ctrl('u')]), "ef");
        assert_eq!(ed.cursor, 0);
        // Ctrl-Y puts it back.
        assert_eq!(typed(&mut ed, &[ctrl('y')]), "abcdef");
    }

    #[test]
    fn ctrl_w_rubs_out_the_word_before_the_cursor_as_the_shell_does() {
        let mut ed = Editor::new("arn:aws:iam::1:role/A  ");
        assert_eq!(typed(&mut ed, &[ctrl('w')]), "");
        let mut ed = Editor::new("eu-west-1 us-east-1");
        assert_eq!(typed(&mut ed, &[ctrl('w')]), "eu-west-1 ");
        // Alt-Backspace stops at punctuation.
        let mut ed = Editor::new("eu-west-1");
        let back = KeyEvent::new(KeyCode::Backspace, KeyModifiers::ALT);
        assert_eq!(typed(&mut ed, &[back]), "eu-west-");
    }

    #[test]
    fn ctrl_a_and_ctrl_e_move_to_either_end() {
        let mut ed = Editor::new("hours");
        let mut keys = vec![ctrl('a')];
        keys.extend(text("2 "));
        keys.push(ctrl('e'));
        keys.push(ch('!'));
        assert_eq!(typed(&mut ed, &keys), "2 hours!");
        // Ctrl-K kills to the end; Alt-B / Alt-F move by words.
        let mut ed = Editor::new("one two three");
        assert_eq!(typed(&mut ed, &[alt('b'), alt('b'), ctrl('k')]), "one ");
        let mut ed = Editor::new("one two");
        assert_eq!(typed(&mut ed, &[ctrl('a'), alt('f'), alt('d')]), "one");
    }

    #[test]
    fn no_control_key_is_typed_as_a_letter() {
        for c in 'a'..='z' {
            let mut ed = Editor::new("x");
            let step = ed.key(ctrl(c));
            let t: String = ed.text.iter().collect();
            assert!(t == "x" || t.is_empty(), "Ctrl-{c} left {t:?}");
            let expected = match c {
                'c' | 'g' => Step::Quit,
                'j' | 'm' => Step::Submit,
                _ => Step::Edit,
            };
            assert_eq!(step, expected, "Ctrl-{c}");
        }
        // Ctrl-D deletes under the cursor; on an empty line it is the end of input.
        let mut ed = Editor::new("");
        assert_eq!(ed.key(ctrl('d')), Step::End);
        assert_eq!(
            Editor::new("").key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
            Step::Quit
        );
    }

    #[test]
    fn pasted_text_stays_on_one_line_without_control_characters() {
        let mut ed = Editor::new("");
        ed.paste("arn:aws:iam::1:role/A\n\x1b[2J");
        assert_eq!(ed.value().as_str(), "arn:aws:iam::1:role/A [2J");
        // Lines as a terminal pastes them (\r), or \r\n: apart, never glued.
        for paste in [
            "arn:aws:iam::1:role/Pasted\reu-west-1\r",
            "arn:aws:iam::1:role/Pasted\r\neu-west-1\r\n",
        ] {
            let mut ed = Editor::new("");
            ed.paste(paste);
            assert_eq!(ed.value().as_str(), "arn:aws:iam::1:role/Pasted eu-west-1");
        }
    }

    #[test]
    fn kills_in_a_row_are_put_back_together() {
        // Ctrl-W twice, then Ctrl-Y: both words back, in order.
        let mut ed = Editor::new("role/Foo bar baz");
        assert_eq!(typed(&mut ed, &[ctrl('w'), ctrl('w')]), "role/Foo ");
        assert_eq!(typed(&mut ed, &[ctrl('y')]), "role/Foo bar baz");
        // Forward kills add after: Alt-D twice from the start.
        let mut ed = Editor::new("one two three");
        assert_eq!(typed(&mut ed, &[ctrl('a'), alt('d'), alt('d')]), " three");
        assert_eq!(typed(&mut ed, &[ctrl('e'), ctrl('y')]), " threeone two");
        // A key between two kills starts a new kill: Ctrl-Y puts back the last only.
        let mut ed = Editor::new("a b c");
        assert_eq!(typed(&mut ed, &[ctrl('w'), ch('x'), ctrl('w')]), "a b ");
        assert_eq!(typed(&mut ed, &[ctrl('y')]), "a b x");
    }
}
