//! A fast encoder for the embedded `cl100k_base` that gives exactly `tiktoken`'s tokens.
//!
//! `tiktoken` spends most of its time in `fancy-regex`, which runs the split pattern
//! `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
//! on a backtracking VM. For ASCII text this module splits by hand, one alternative after
//! another exactly as the pattern orders them, and then merges each piece with the same
//! ranks: a whole-piece lookup first (most pieces are one token), else lowest-rank-first BPE
//! with the leftmost pair winning ties.
//!
//! Non-ASCII text needs Unicode's letter and number categories, which std does not expose
//! exactly, so it goes to `tiktoken` itself. Text is cut into segments just before a space that
//! follows a non-whitespace character: no piece of the pattern crosses such a point (every
//! alternative either stops at whitespace or is whitespace only, and none looks behind), so
//! encoding the segments separately yields the tokens of the whole text. ASCII segments take
//! the fast path, the others `tiktoken`.

#[cfg(test)]
mod tests;

use rustc_hash::FxHashMap;
use tiktoken_rs::CoreBPE;

/// Ordinary ranks of `cl100k_base`; the special tokens sit above them.
const N_RANKS: u32 = 100_256;
/// Pieces at least this long are merged by `tiktoken` (it switches to a heap there).
const LONG_PIECE: usize = 100;

/// The ranks, keyed by token bytes, beside the reference encoder for non-ASCII text.
pub(crate) struct FastCl100k {
    reference: &'static CoreBPE,
    ranks: FxHashMap<&'static [u8], u32>,
    byte_ranks: [u32; 256],
}

impl FastCl100k {
    /// Reads the ranks out of `reference`, so both encoders share one vocabulary.
    pub(crate) fn new(reference: &'static CoreBPE) -> FastCl100k {
        let mut arena = Vec::new();
        let mut spans = Vec::with_capacity(N_RANKS as usize);
        for rank in 0..N_RANKS {
            if let Ok(bytes) = reference.decode_bytes(&[rank]) {
                spans.push((arena.len(), bytes.len(), rank));
                arena.extend_from_slice(&bytes);
            }
        }
        // One allocation for every token's bytes, alive as long as the process.
        let arena: &'static [u8] = Vec::leak(arena);
        let mut ranks = FxHashMap::with_capacity_and_hasher(spans.len(), Default::default());
        let mut byte_ranks = [u32::MAX; 256];
        for (start, len, rank) in spans {
            let bytes = &arena[start..start + len];
            if let [byte] = bytes {
                byte_ranks[usize::from(*byte)] = rank;
            }
            ranks.insert(bytes, rank);
        }
        FastCl100k {
            reference,
            ranks,
            byte_ranks,
        }
    }

    /// Exactly `reference.encode_ordinary(text)`.
    pub(crate) fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        if text.is_ascii() {
            self.encode_ascii(text.as_bytes(), &mut out);
            return out;
        }
        for (segment, ascii) in segments(text) {
            if ascii {
                self.encode_ascii(segment.as_bytes(), &mut out);
            } else {
                out.extend(self.reference.encode_ordinary(segment));
            }
        }
        out
    }

    fn encode_ascii(&self, text: &[u8], out: &mut Vec<u32>) {
        let mut start = 0;
        while start < text.len() {
            let end = piece_end(text, start);
            self.encode_piece(&text[start..end], out);
            start = end;
        }
    }

    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if let [byte] = piece {
            out.push(self.byte_ranks[usize::from(*byte)]);
            return;
        }
        if let Some(&rank) = self.ranks.get(piece) {
            out.push(rank);
            return;
        }
        if piece.len() >= LONG_PIECE {
            // A piece re-split on its own is the same single piece, so this is exact.
            let text = std::str::from_utf8(piece).unwrap_or_default();
            out.extend(self.reference.encode_ordinary(text));
            return;
        }
        self.merge(piece, out);
    }

    /// Byte-pair merging: repeatedly join the adjacent pair whose bytes have the lowest rank
    /// (the leftmost on ties) until no pair is a token.
    fn merge(&self, piece: &[u8], out: &mut Vec<u32>) {
        let rank_of = |bytes: &[u8]| self.ranks.get(bytes).copied().unwrap_or(u32::MAX);
        // `starts[i]` is where part i begins; `pair[i]` the rank of parts i and i+1 joined.
        let mut starts: Vec<usize> = (0..=piece.len()).collect();
        let mut pair: Vec<u32> = (0..piece.len() - 1)
            .map(|i| rank_of(&piece[i..i + 2]))
            .collect();
        while let Some((best, _)) = pair
            .iter()
            .enumerate()
            .min_by_key(|&(index, &rank)| (rank, index))
            .filter(|&(_, &rank)| rank != u32::MAX)
        {
            // Join parts `best` and `best + 1`.
            starts.remove(best + 1);
            pair.remove(best);
            if best < pair.len() {
                pair[best] = rank_of(&piece[starts[best]..starts[best + 2]]);
            }
            if best > 0 {
                pair[best - 1] = rank_of(&piece[starts[best - 1]..starts[best + 1]]);
            }
        }
        for window in starts.windows(2) {
            out.push(rank_of(&piece[window[0]..window[1]]));
        }
    }
}

/// Character classes of the split pattern, for ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    /// `\s` other than `\r` and `\n`.
    Space,
    /// `\r` or `\n`.
    Newline,
    Other,
}

fn class(byte: u8) -> Class {
    match byte {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Number,
        b'\r' | b'\n' => Class::Newline,
        // Unicode White_Space in ASCII: tab, vertical tab, form feed, space.
        b'\t' | 0x0b | 0x0c | b' ' => Class::Space,
        _ => Class::Other,
    }
}

fn is_space(byte: u8) -> bool {
    matches!(class(byte), Class::Space | Class::Newline)
}

/// The end of the piece that starts at `start`: the pattern's alternatives, in order.
fn piece_end(text: &[u8], start: usize) -> usize {
    let n = text.len();
    let at = |index: usize| text.get(index).copied();
    let run = |from: usize, keep: fn(u8) -> bool| {
        from + text[from..].iter().take_while(|&&byte| keep(byte)).count()
    };
    let first = text[start];
    let first_class = class(first);
    // '(?i:[sdmt]|ll|ve|re)
    if first == b'\'' {
        let lower = |index: usize| at(index).map(|byte| byte.to_ascii_lowercase());
        if matches!(lower(start + 1), Some(b's' | b'd' | b'm' | b't')) {
            return start + 2;
        }
        if let (Some(a), Some(b)) = (lower(start + 1), lower(start + 2))
            && matches!((a, b), (b'l', b'l') | (b'v', b'e') | (b'r', b'e'))
        {
            return start + 3;
        }
    }
    let is_letter = |byte: u8| class(byte) == Class::Letter;
    // [^\r\n\p{L}\p{N}]?+\p{L}++
    if first_class == Class::Letter {
        return run(start, is_letter);
    }
    if matches!(first_class, Class::Space | Class::Other) && at(start + 1).is_some_and(is_letter) {
        return run(start + 1, is_letter);
    }
    // \p{N}{1,3}+
    if first_class == Class::Number {
        let digits = text[start..]
            .iter()
            .take(3)
            .take_while(|&&byte| class(byte) == Class::Number)
            .count();
        return start + digits;
    }
    // ' ?[^\s\p{L}\p{N}]++[\r\n]*+'
    let is_other = |byte: u8| class(byte) == Class::Other;
    let symbols = if first == b' ' { start + 1 } else { start };
    if at(symbols).is_some_and(is_other) {
        let end = run(symbols, is_other);
        return run(end, |byte| class(byte) == Class::Newline);
    }
    // What is left starts with whitespace.
    let space_end = run(start, is_space);
    // \s++$
    if space_end == n {
        return n;
    }
    // \s*[\r\n]: up to the run's last newline.
    if let Some(last) = text[start..space_end]
        .iter()
        .rposition(|&byte| class(byte) == Class::Newline)
    {
        return start + last + 1;
    }
    // \s+(?!\S): the run but its last character, which goes with what follows.
    if space_end - start >= 2 {
        return space_end - 1;
    }
    // \s
    start + 1
}

/// Splits `text` just before each space that follows a non-whitespace character, and groups
/// neighbouring pieces into maximal runs that are all ASCII or all not: `(segment, is_ascii)`.
fn segments(text: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut cuts = text
        .char_indices()
        .scan(None, |previous: &mut Option<char>, (index, c)| {
            let cut = c == ' ' && previous.is_some_and(|p| !p.is_whitespace());
            *previous = Some(c);
            Some((index, cut))
        })
        .filter_map(|(index, cut)| cut.then_some(index))
        .chain(std::iter::once(text.len()))
        .peekable();
    let mut start = 0;
    let mut pending: Option<(usize, bool)> = None;
    std::iter::from_fn(move || {
        loop {
            let Some(end) = cuts.next() else {
                return pending.take().map(|(from, ascii)| (&text[from..], ascii));
            };
            let ascii = text[start..end].is_ascii();
            let piece_start = std::mem::replace(&mut start, end);
            match pending {
                None => pending = Some((piece_start, ascii)),
                Some((_, kind)) if kind == ascii => {}
                Some((from, kind)) => {
                    pending = Some((piece_start, ascii));
                    return Some((&text[from..piece_start], kind));
                }
            }
        }
    })
}
