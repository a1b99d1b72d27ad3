//! Rendering argv as POSIX shell words: the copy-pasteable commands in logs,
//! manifests' `reproduce` lines, matrix reproducers and Slurm scripts. One
//! quoting rule for all of them, so a command printed anywhere pastes the same.

/// Quote a word for a POSIX shell when it needs it (single quotes, with `'`
/// as `'\''`); words of plain characters stay as they are.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words joined into one command line, each quoted as [`quote`] does.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words.iter().map(|w| quote(w.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_spaces_and_quotes() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("-m"), "-m");
        assert_eq!(quote(""), "''");
        assert_eq!(join(&["qemu", "-append", "console=ttyS0 quiet"]), "qemu -append 'console=ttyS0 quiet'");
    }
}
