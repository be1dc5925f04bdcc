//! Incremental Server-Sent Events parsing from arbitrary byte chunks: events end at a blank
//! line (`\n\n` or `\r\n\r\n`), `data:` lines of one event are joined with `\n`, comments
//! (`: keep-alive`) and other fields are ignored.

#[cfg(test)]
mod tests;

/// Buffers partial events across chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    /// An empty parser.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds one chunk, calling `on_data` with the data of every event it completes.
    pub fn push(&mut self, chunk: &[u8], mut on_data: impl FnMut(&[u8])) {
        self.buffer.extend_from_slice(chunk);
        let mut consumed = 0;
        while let Some(newline) = self.buffer[consumed..].iter().position(|&b| b == b'\n') {
            let line_end = consumed + newline;
            let mut line = &self.buffer[consumed..line_end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.is_empty() {
                if self.has_data {
                    on_data(&self.data);
                }
                self.data.clear();
                self.has_data = false;
            } else if let Some(value) = line.strip_prefix(b"data:") {
                let value = value.strip_prefix(b" ").unwrap_or(value);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            consumed = line_end + 1;
        }
        self.buffer.drain(..consumed);
    }

    /// Whether bytes of an unfinished event are pending (a stream that ends here was cut).
    pub fn has_partial_event(&self) -> bool {
        self.has_data || !self.buffer.is_empty()
    }
}
