//! rustc's rendered message coloured as rustc colours it on a terminal.

/// rustc's rendered message coloured as rustc colours it on a terminal (Jupyter's frontends
/// show ANSI colour in an error's traceback): the level, the locations and the snippets' gutter,
/// the markers under the code and their labels.
pub fn colour(rendered: &str) -> String {
    const BOLD: &str = "\x1b[1m";
    const BLUE: &str = "\x1b[1m\x1b[94m";
    const RESET: &str = "\x1b[0m";
    let level_colour = |line: &str| {
        [
            ("error", "\x1b[1m\x1b[91m"),
            ("warning", "\x1b[1m\x1b[93m"),
            ("note", "\x1b[1m\x1b[92m"),
            ("help", "\x1b[1m\x1b[96m"),
        ]
        .into_iter()
        .find(|(name, _)| line.starts_with(name))
        .map(|(_, c)| c)
    };
    let mut level = "\x1b[1m\x1b[91m";
    let mut out = Vec::new();
    for line in rendered.lines() {
        if let Some(c) = level_colour(line)
            && let Some(colon) = line.find(": ")
        {
            if line.starts_with("error") || line.starts_with("warning") {
                level = c;
            }
            out.push(format!(
                "{c}{}{RESET}{BOLD}{}{RESET}",
                &line[..colon],
                &line[colon..]
            ));
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("--> ") || trimmed.starts_with("::: ") {
            let indent = line.len() - trimmed.len();
            out.push(format!(
                "{}{BLUE}{}{RESET}{}",
                &line[..indent],
                &trimmed[..3],
                &trimmed[3..]
            ));
            continue;
        }
        if let Some(bar) = line.find('|')
            && line[..bar].trim().bytes().all(|b| b.is_ascii_digit())
        {
            let (gutter, code) = line.split_at(bar + 1);
            let marks = code.trim_start();
            let body = if marks.starts_with('^') {
                format!("{level}{code}{RESET}")
            } else if marks.starts_with('-') || marks.starts_with('|') {
                format!("{BLUE}{code}{RESET}")
            } else {
                code.to_string()
            };
            out.push(format!("{BLUE}{gutter}{RESET}{body}"));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("= ") {
            let indent = line.len() - trimmed.len();
            out.push(format!(
                "{}{BLUE}={RESET} {BOLD}{rest}{RESET}",
                &line[..indent]
            ));
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n")
}
