//! What `--watch` shares between the CLI and the daemon: the default quiet delay, the
//! paths that never count, and what an ignore glob means.
//!
//! A glob without `/` matches any one part of a path (`node_modules` ignores every
//! `node_modules` directory and all under it; `*.log` every file ending in `.log`). A
//! glob with `/` matches the path relative to the watched directory (`src/gen/**`,
//! `build/`) or, starting with `/`, the absolute path; either also covers everything
//! under what it matches. `*` and `?` stay within one part, `**` crosses parts, `[abc]`,
//! `[!abc]` and `{a,b}` are as in a shell. The daemon compiles [`glob_regex`]'s pattern.

use std::time::Duration;

/// The quiet after the last change before a watched app is restarted, unless
/// `watch_delay_ms` says otherwise: a burst of saves (or a `git checkout`) gives one
/// restart.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(300);

/// Globs whose changes never count, whatever the user adds: version control,
/// dependencies, build output, bytecode, logs, and editors' swap and temporary files (vim
/// writes `4913` to test a directory and keeps `.name.swp`; emacs writes `.#name` and
/// `name~`). Velos's own home (its logs and state) never counts either.
pub const BUILTIN_IGNORES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "target",
    "__pycache__",
    "*.log",
    "*.swp",
    "*.swx",
    "*.swo",
    "*~",
    ".#*",
    "4913",
    "*.tmp",
];

/// The longest glob accepted, in bytes.
pub const MAX_GLOB_BYTES: usize = 1024;

/// A glob that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("watch ignore glob {glob:?} is not valid: {why}")]
pub struct BadGlob {
    /// The glob as given.
    pub glob: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Where a glob applies: to each part of a path, or to the whole path (relative to the
/// watched directory, or absolute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobScope {
    /// No `/` in it: any one part of the path.
    Part,
    /// A `/` in it: the path relative to the watched directory.
    Relative,
    /// Starts with `/`: the absolute path.
    Absolute,
}

/// Where `glob` applies and the regular expression (whole-string) it stands for; for a
/// path glob the expression also matches everything under what the glob matches.
///
/// # Examples
/// ```
/// use velos_proto::watch::{GlobScope, glob_regex};
///
/// assert_eq!(glob_regex("*.log").unwrap(), (GlobScope::Part, r"^[^/]*\.log$".to_owned()));
/// assert_eq!(glob_regex("src/gen/").unwrap().0, GlobScope::Relative);
/// assert!(glob_regex("[abc").is_err());
/// ```
pub fn glob_regex(glob: &str) -> Result<(GlobScope, String), BadGlob> {
    let bad = |why| BadGlob {
        glob: glob.to_owned(),
        why,
    };
    if glob.len() > MAX_GLOB_BYTES {
        return Err(bad("longer than 1024 bytes"));
    }
    // A trailing `/` (a directory) matches the directory, and so all under it.
    let trimmed = glob.trim_end_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let (scope, body) = if let Some(rest) = trimmed.strip_prefix('/') {
        (GlobScope::Absolute, rest)
    } else if trimmed.contains('/') {
        (GlobScope::Relative, trimmed)
    } else {
        (GlobScope::Part, trimmed)
    };
    let mut out = String::from("^");
    if scope == GlobScope::Absolute {
        out.push('/');
    }
    let bytes: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut braces = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            '*' if bytes.get(i + 1) == Some(&'*') => {
                let at_start = i == 0 || bytes[i - 1] == '/';
                match bytes.get(i + 2) {
                    // `**/`: no directory or any number of them.
                    Some('/') if at_start => {
                        out.push_str("(?:.*/)?");
                        i += 3;
                    }
                    _ => {
                        out.push_str(".*");
                        i += 2;
                    }
                }
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                let close = bytes[i + 1..]
                    .iter()
                    .enumerate()
                    .skip(1)
                    .find(|(_, c)| **c == ']')
                    .map(|(at, _)| i + 1 + at)
                    .ok_or_else(|| bad("a '[' is not closed"))?;
                out.push('[');
                let mut class = &bytes[i + 1..close];
                if let Some(('!' | '^', rest)) = class.split_first() {
                    out.push('^');
                    class = rest;
                }
                for &c in class {
                    if matches!(c, '\\' | '[' | ']' | '&' | '~' | '^') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push(']');
                i = close + 1;
                continue;
            }
            '{' => {
                braces += 1;
                out.push_str("(?:");
            }
            ',' if braces > 0 => out.push('|'),
            '}' if braces > 0 => {
                braces -= 1;
                out.push(')');
            }
            '\\' => {
                i += 1;
                let Some(&next) = bytes.get(i) else {
                    return Err(bad("it ends with '\\'"));
                };
                push_literal(&mut out, next);
            }
            c => push_literal(&mut out, c),
        }
        i += 1;
    }
    if braces > 0 {
        return Err(bad("a '{' is not closed"));
    }
    if scope != GlobScope::Part {
        out.push_str("(?:/.*)?");
    }
    out.push('$');
    Ok((scope, out))
}

fn push_literal(out: &mut String, c: char) {
    if matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    ) {
        out.push('\\');
    }
    out.push(c);
}

/// A glob for one part of a path (a glob without `/`), matched without a regular
/// expression: the daemon checks every file of a watched tree against the part globs
/// while it sets the watch up, so this is the hot path (20,000 files, a dozen globs).
/// `*` and `?` within the part, `[abc]`, `[!a-z]`, and `\` escapes; `{a,b}` is expanded
/// into several ([`PartGlob::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartGlob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl PartGlob {
    /// The part globs `glob` (a glob without `/`) stands for: one, or one per
    /// alternative of its `{a,b}` groups.
    ///
    /// # Examples
    /// ```
    /// use velos_proto::watch::PartGlob;
    ///
    /// let globs = PartGlob::parse("*.{log,tmp}").unwrap();
    /// assert!(globs.iter().any(|g| g.matches("out.log")));
    /// assert!(!globs.iter().any(|g| g.matches("out.js")));
    /// ```
    pub fn parse(glob: &str) -> Result<Vec<PartGlob>, BadGlob> {
        let bad = |why| BadGlob {
            glob: glob.to_owned(),
            why,
        };
        let glob = glob.trim_end_matches('/');
        let mut out = Vec::new();
        for alternative in expand_braces(glob).map_err(bad)? {
            out.push(PartGlob {
                tokens: tokens(&alternative).map_err(bad)?,
            });
        }
        Ok(out)
    }

    /// Whether the whole of `text` (one part of a path) matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0, 0);
        // Where the last `*` was, and the text position it now stands up to: on a
        // mismatch it takes one more character (linear unless there are several stars).
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            let step = match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(Token::Literal(c)) => *c == text[t],
                Some(Token::One) => true,
                Some(Token::Class { negated, ranges }) => {
                    let inside = ranges.iter().any(|&(a, b)| (a..=b).contains(&text[t]));
                    inside != *negated
                }
                None => false,
            };
            if step {
                t += 1;
                p += 1;
            } else if let Some((star_p, star_t)) = star {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            } else {
                return false;
            }
        }
        self.tokens[p..].iter().all(|token| *token == Token::Star)
    }
}

/// `glob` with its `{a,b}` groups expanded (nested groups too), at most 64 alternatives.
fn expand_braces(glob: &str) -> Result<Vec<String>, &'static str> {
    let chars: Vec<char> = glob.chars().collect();
    let mut depth = 0;
    let mut open = None;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open.expect("set at depth 0");
                    let before: String = chars[..start].iter().collect();
                    let after: String = chars[i + 1..].iter().collect();
                    let mut out = Vec::new();
                    for choice in split_top(&chars[start + 1..i]) {
                        for rest in expand_braces(&format!("{before}{choice}{after}"))? {
                            out.push(rest);
                            if out.len() > 64 {
                                return Err("its {a,b} groups make more than 64 globs");
                            }
                        }
                    }
                    return Ok(out);
                }
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err("a '{' is not closed");
    }
    Ok(vec![glob.to_owned()])
}

/// The alternatives of a `{...}` group's inside, split at its own commas.
fn split_top(inside: &[char]) -> Vec<String> {
    let (mut out, mut current, mut depth, mut escaped) = (Vec::new(), String::new(), 0, false);
    for &c in inside {
        if escaped {
            escaped = false;
            current.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                current.push(c);
            }
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out
}

/// The tokens of a part glob without braces.
fn tokens(glob: &str) -> Result<Vec<Token>, &'static str> {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
            }
            '?' => out.push(Token::One),
            '\\' => {
                i += 1;
                let c = *chars.get(i).ok_or("it ends with '\\'")?;
                out.push(Token::Literal(c));
            }
            '[' => {
                let mut j = i + 1;
                let negated = matches!(chars.get(j), Some('!' | '^'));
                if negated {
                    j += 1;
                }
                let start = j;
                let mut ranges = Vec::new();
                // A `]` first is a member.
                while j < chars.len() && (chars[j] != ']' || j == start) {
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|c| *c != ']')
                    {
                        ranges.push((chars[j], chars[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((chars[j], chars[j]));
                        j += 1;
                    }
                }
                if j >= chars.len() {
                    return Err("a '[' is not closed");
                }
                out.push(Token::Class { negated, ranges });
                i = j;
            }
            c => out.push(Token::Literal(c)),
        }
        i += 1;
    }
    Ok(out)
}

/// Checks each of `globs` ([`glob_regex`]); the first one that cannot be used is the
/// error.
pub fn check_globs(globs: &[String]) -> Result<(), BadGlob> {
    globs.iter().try_for_each(|glob| glob_regex(glob).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_anchored_expressions() {
        let cases = [
            ("node_modules", GlobScope::Part, "^node_modules$"),
            (".#*", GlobScope::Part, r"^\.\#[^/]*$"),
            ("*~", GlobScope::Part, r"^[^/]*\~$"),
            ("file?.{js,ts}", GlobScope::Part, r"^file[^/]\.(?:js|ts)$"),
            ("[!a-c]x", GlobScope::Part, r"^[^a-c]x$"),
            ("dist/", GlobScope::Part, "^dist$"),
            ("src/gen/**", GlobScope::Relative, "^src/gen/.*(?:/.*)?$"),
            (
                "./src/**/*.map",
                GlobScope::Relative,
                r"^src/(?:.*/)?[^/]*\.map(?:/.*)?$",
            ),
            ("/srv/tmp", GlobScope::Absolute, "^/srv/tmp(?:/.*)?$"),
        ];
        for (glob, scope, regex) in cases {
            assert_eq!(
                glob_regex(glob).unwrap(),
                (scope, regex.to_owned()),
                "{glob}"
            );
        }
    }

    #[test]
    fn broken_globs_are_refused_with_the_reason() {
        assert_eq!(
            glob_regex("a[b").unwrap_err().to_string(),
            "watch ignore glob \"a[b\" is not valid: a '[' is not closed"
        );
        assert!(glob_regex("{a,b").is_err());
        assert!(glob_regex("").is_err());
        assert!(glob_regex("/").is_err());
        assert!(glob_regex("x\\").is_err());
        assert!(glob_regex(&"a".repeat(2000)).is_err());
        assert!(check_globs(&["ok".into(), "[".into()]).is_err());
    }

    #[test]
    fn part_globs_match_whole_parts() {
        let any = |glob: &str, text: &str| {
            PartGlob::parse(glob)
                .unwrap()
                .iter()
                .any(|g| g.matches(text))
        };
        assert!(any("node_modules", "node_modules"));
        assert!(!any("node_modules", "node_modules2"));
        assert!(any("*.log", "server.log") && any("*.log", ".log"));
        assert!(!any("*.log", "server.log.1") && !any("*.log", "log"));
        assert!(any(".#*", ".#app.js") && !any(".#*", "a.#b"));
        assert!(any("*~", "app.js~") && !any("*~", "app.js"));
        assert!(any("4913", "4913") && !any("4913", "49130"));
        assert!(any("a*b*c", "axxbyyc") && !any("a*b*c", "axxbyy"));
        assert!(any("f?le", "file") && !any("f?le", "fle"));
        assert!(any("[!a-c]x", "dx") && !any("[!a-c]x", "bx"));
        assert!(any("[]a]", "]") && any("[]a]", "a"));
        assert!(any("*.{js,ts}", "a.ts") && !any("*.{js,ts}", "a.rs"));
        assert!(any("{a,b{c,d}}", "bd"));
        assert!(any("\\*", "*") && !any("\\*", "x"));
        assert!(any("*", "") && !any("?", ""));
        assert!(PartGlob::parse("[ab").is_err());
        assert!(PartGlob::parse("{ab").is_err());
        // Many stars against a long name: still quick.
        let glob = "*a*a*a*a*a*a*a*a*b";
        assert!(!any(glob, &"a".repeat(4000)));
    }

    #[test]
    fn every_builtin_glob_is_valid() {
        for glob in BUILTIN_IGNORES {
            assert_eq!(glob_regex(glob).unwrap().0, GlobScope::Part, "{glob}");
        }
    }
}
