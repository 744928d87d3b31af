//! "Did you mean …?": the closest known name to a mistyped one.

/// The closest of `names` to `s` by edit distance, when it is close enough to be a likely typo.
pub(super) fn closest<'a>(s: &str, names: &[&'a str]) -> Option<&'a str> {
    let s = s.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (edits(&s, &n.to_ascii_lowercase()), *n))
        .filter(|(d, n)| *d <= (n.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// A name so close to a declared one (one or two edits in a name of eight or more letters, one in a shorter one of at
/// least four) that it is surely that name mistyped: the declared name.
pub(super) fn typo_of<'a>(s: &str, names: &[&'a str]) -> Option<&'a str> {
    let c = closest(s, names)?;
    let (a, b) = (s.to_ascii_lowercase(), c.to_ascii_lowercase());
    if a == b || a.len() < 4 || b.len() < 4 {
        return None;
    }
    let limit = if b.len() >= 8 { 2 } else { 1 };
    (edits(&a, &b) <= limit).then_some(c)
}

/// The edit (Levenshtein) distance between two names.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_told_from_other_names() {
        let names = ["severity", "status", "start", "end", "host_name", "id"];
        assert_eq!(typo_of("sevrity", &names), Some("severity"));
        assert_eq!(typo_of("severtiy", &names), Some("severity"));
        assert_eq!(typo_of("hostname", &names), Some("host_name"));
        assert_eq!(typo_of("statu", &names), Some("status"));
        // Short or different names are not typos: msticpy's pivots pass such extras, and they are ignored.
        assert_eq!(typo_of("ip", &names), None);
        assert_eq!(typo_of("table", &names), None);
        assert_eq!(typo_of("add_query_items", &names), None);
    }
}
