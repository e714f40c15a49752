//! `is_complete_request`: is this code ready to run, does it need more lines, or is it invalid?
//!
//! A lexical scan (strings, chars, comments, raw strings) that tracks brackets: an open bracket
//! or an unterminated string or block comment means *incomplete*; a closing bracket that matches
//! nothing means *invalid*.

/// The verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Ready to run.
    Complete,
    /// Needs more input; the indent to offer on the next line.
    Incomplete(String),
    /// Cannot become valid by adding lines.
    Invalid,
}

/// Scans `code`.
pub fn check(code: &str) -> Verdict {
    let b = code.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < b.len() && depth > 0 {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                if depth > 0 {
                    return Verdict::Incomplete(String::new());
                }
                continue;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && (i == 0 || !is_ident(b[i - 1])) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                let mut closed = false;
                while j < b.len() {
                    if b[j] == b'"'
                        && b[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == b'#')
                            .count()
                            == hashes
                    {
                        j += 1 + hashes;
                        closed = true;
                        break;
                    }
                    j += 1;
                }
                if !closed {
                    return Verdict::Incomplete(String::new());
                }
                i = j;
                continue;
            }
            b'"' => {
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'"' {
                        closed = true;
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                if !closed {
                    return Verdict::Incomplete(String::new());
                }
                continue;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): skip a literal only.
                if b.get(i + 1) == Some(&b'\\') {
                    if let Some(end) = b[i + 2..].iter().position(|&x| x == b'\'') {
                        i += 3 + end;
                        continue;
                    }
                } else if let Some(len) = char_len(&b[i + 1..])
                    && b.get(i + 1 + len) == Some(&b'\'')
                {
                    i += 2 + len;
                    continue;
                }
            }
            b'(' | b'[' | b'{' => stack.push(c),
            b')' | b']' | b'}' => {
                let open = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if stack.pop() != Some(open) {
                    return Verdict::Invalid;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if stack.is_empty() {
        Verdict::Complete
    } else {
        Verdict::Incomplete("    ".repeat(stack.len()))
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn char_len(b: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(&b[..b.len().min(4)]).ok().or_else(|| {
        (1..=4)
            .rev()
            .find_map(|n| std::str::from_utf8(b.get(..n)?).ok())
    })?;
    s.chars().next().map(char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples() {
        assert_eq!(check("let x = 1;"), Verdict::Complete);
        assert_eq!(check("fn f() { 1 }"), Verdict::Complete);
        assert_eq!(check("let s = \"}\"; let c = '{';"), Verdict::Complete);
        assert_eq!(
            check("fn f<'a>(x: &'a str) -> &'a str { x }"),
            Verdict::Complete
        );
        assert_eq!(check("let r = r#\"a \" { b\"#;"), Verdict::Complete);
        assert_eq!(check("fn f() {"), Verdict::Incomplete("    ".into()));
        assert_eq!(check("let v = vec![1,"), Verdict::Incomplete("    ".into()));
        assert_eq!(check("let s = \"open"), Verdict::Incomplete(String::new()));
        assert_eq!(check("/* comment"), Verdict::Incomplete(String::new()));
        assert_eq!(check("let x = 1; }"), Verdict::Invalid);
        assert_eq!(check("(]"), Verdict::Invalid);
        assert_eq!(check("// just a comment {"), Verdict::Complete);
    }
}
