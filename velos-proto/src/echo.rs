//! How much of a client's input an error message repeats: a name, a path or a value of
//! 100,000 characters must not come back whole in a one-line error (and in `velosd.log`).

use std::borrow::Cow;

/// How many characters of an input an error message repeats.
pub const ECHO_CHARS: usize = 80;

/// `text` as an error message repeats it: whole up to [`ECHO_CHARS`] characters, else its
/// first [`ECHO_CHARS`] characters and `…(N bytes)`, N the whole input's length.
///
/// # Examples
/// ```
/// use velos_proto::echo;
///
/// assert_eq!(echo("api"), "api");
/// let long = "a".repeat(100_000);
/// assert_eq!(echo(&long), format!("{}…(100000 bytes)", "a".repeat(80)));
/// ```
pub fn echo(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…({} bytes)", &text[..end], text.len())),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inputs_stay_whole_and_long_ones_are_cut_at_a_character() {
        let exact = "x".repeat(ECHO_CHARS);
        assert_eq!(echo(&exact), exact);
        let wide = "é".repeat(100);
        assert_eq!(echo(&wide), format!("{}…(200 bytes)", "é".repeat(80)));
    }
}
