//! Text normalisation shared by labels and texts, so that "ＡＰＰＬＥ",
//! "apple" and "Apple" meet: Unicode NFKC (which also folds full-width and
//! half-width forms, UAX #15), lower-casing (Unicode default case
//! conversion, which equals case folding for all but a few scripts), and
//! every run of whitespace folded to one space, trimmed at both ends.
//!
//! [`NormalizedText`] keeps, for every byte of the normalised text, the
//! Unicode scalar offset of the original character it came from, so matches
//! found in the normalised text map back to offsets in the user's text.

/// The normalised form of a label: NFKC, lower case, whitespace folded.
pub fn normalize(text: &str) -> String {
    NormalizedText::new(text).text
}

/// A normalised text with the way back to the original offsets.
#[derive(Debug, Clone)]
pub struct NormalizedText {
    /// The normalised text.
    pub text: String,
    /// For each byte of `text`, the Unicode scalar offset in the original
    /// text of the character it came from; one extra entry at the end holds
    /// the original length in scalars.
    origin: Vec<u32>,
    /// Whether each original character is upper-case (for case-exact checks),
    /// indexed by original scalar offset.
    original: Vec<char>,
}

impl NormalizedText {
    /// Normalises `text` character by character. (NFKC is applied per
    /// character: a base letter and a separate combining mark stay apart,
    /// which only matters for text not already in NFC.)
    pub fn new(text: &str) -> Self {
        let original: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut origin = Vec::with_capacity(text.len() + 1);
        let mut pending_space = false;
        let mut buf = [0u8; 4];
        for (i, c) in original.iter().enumerate() {
            let i = i as u32;
            let mut decomposed = Vec::with_capacity(2);
            unicode_normalization::char::decompose_compatible(*c, |d| decomposed.push(d));
            for n in decomposed {
                for l in n.to_lowercase() {
                    if l.is_whitespace() || l.is_control() {
                        pending_space = !out.is_empty();
                        continue;
                    }
                    if pending_space {
                        out.push(' ');
                        origin.push(i);
                        pending_space = false;
                    }
                    let s = l.encode_utf8(&mut buf);
                    out.push_str(s);
                    origin.extend(std::iter::repeat_n(i, s.len()));
                }
            }
        }
        // Recompose what the per-character compatibility decomposition split
        // (e.g. "é" → "e" + U+0301 → "é"), keeping the origin of the first part.
        let (text, origin) = recompose(&out, &origin);
        let mut origin = origin;
        origin.push(original.len() as u32);
        Self {
            text,
            origin,
            original,
        }
    }

    /// The original Unicode scalar offset of normalised byte offset `byte`
    /// (a start offset).
    pub fn start_of(&self, byte: usize) -> usize {
        self.origin[byte] as usize
    }

    /// The original Unicode scalar offset just after the character that ends
    /// at normalised byte offset `byte` (an exclusive end offset).
    pub fn end_of(&self, byte: usize) -> usize {
        if byte == 0 {
            return 0;
        }
        self.origin[byte - 1] as usize + 1
    }

    /// The original text between scalar offsets `start` and `end`.
    pub fn original_slice(&self, start: usize, end: usize) -> String {
        self.original[start..end].iter().collect()
    }

    /// The original character at scalar offset `i`.
    pub fn original_char(&self, i: usize) -> Option<char> {
        self.original.get(i).copied()
    }
}

/// Canonical composition of `text` (NFC after the per-character NFKD above,
/// which together make NFKC), carrying the byte origins along.
fn recompose(text: &str, origin: &[u32]) -> (String, Vec<u32>) {
    use unicode_normalization::UnicodeNormalization;
    if text.is_ascii() {
        return (text.to_owned(), origin.to_vec());
    }
    let mut out = String::with_capacity(text.len());
    let mut out_origin = Vec::with_capacity(origin.len());
    // Compose cluster by cluster: a starter and the marks that follow it.
    let mut start = 0;
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let mut k = 0;
    while k < bytes.len() {
        let mut j = k + 1;
        while j < bytes.len()
            && unicode_normalization::char::canonical_combining_class(bytes[j].1) != 0
        {
            j += 1;
        }
        let end = bytes.get(j).map_or(text.len(), |b| b.0);
        let cluster = &text[start..end];
        let first_origin = origin[start];
        for c in cluster.nfc() {
            let before = out.len();
            out.push(c);
            out_origin.extend(std::iter::repeat_n(first_origin, out.len() - before));
        }
        start = end;
        k = j;
    }
    (out, out_origin)
}

/// Whether `c` belongs to a script written without spaces between words
/// (Han, Hiragana, Katakana): mentions may start and end anywhere inside a
/// run of such characters.
pub fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF        // Hiragana, Katakana
        | 0x3400..=0x4DBF      // CJK Extension A
        | 0x4E00..=0x9FFF      // CJK Unified Ideographs
        | 0xF900..=0xFAFF      // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // CJK Extensions B–F, Compatibility Supplement
}

/// Whether `c` is part of a word in a spaced script (letters and digits
/// outside the unspaced scripts).
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_unspaced_script(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_case_and_spaces_meet() {
        assert_eq!(normalize("ＡＰＰＬＥ"), "apple");
        assert_eq!(normalize("Apple"), "apple");
        assert_eq!(normalize("  Deutsche\t\n Bank "), "deutsche bank");
        assert_eq!(normalize("Ｃａｆé"), "café");
        assert_eq!(normalize("宁德时代"), "宁德时代");
        assert_eq!(normalize("ﾃｽﾄ"), "テスト");
    }

    #[test]
    fn offsets_map_back_to_unicode_scalars() {
        let t = NormalizedText::new("😀 Ａpple  Inc 宁德时代");
        let byte = t.text.find("apple").unwrap();
        let start = t.start_of(byte);
        let end = t.end_of(byte + "apple".len());
        assert_eq!((start, end), (2, 7));
        assert_eq!(t.original_slice(start, end), "Ａpple");
        let byte = t.text.find("宁德时代").unwrap();
        let (s, e) = (t.start_of(byte), t.end_of(byte + "宁德时代".len()));
        assert_eq!(t.original_slice(s, e), "宁德时代");
        assert_eq!(e, "😀 Ａpple  Inc 宁德时代".chars().count());
    }
}
