//! Turns a fuzzer's bytes into structured choices, the same way in the fuzz targets and
//! in the regression tests that replay their findings (no `arbitrary` dependency, so the
//! tests build with the main package's dependencies alone).

pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// One byte, 0 when none are left.
    pub fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    /// Up to `max` bytes, the length taken from the input first.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = (usize::from(self.byte()) | usize::from(self.byte()) << 8).min(max);
        let len = len.min(self.bytes.len());
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        taken
    }

    /// Up to `max` bytes as text (invalid UTF-8 replaced).
    pub fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }
}
