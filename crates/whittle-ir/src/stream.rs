//! Encoding a protobuf message straight into a file through a fixed-size buffer, so a model
//! is never held twice in memory (once as tensors, once as encoded bytes).
use bytes::BufMut;
use bytes::buf::UninitSlice;
use std::io::Write;

const CHUNK: usize = 1 << 20;

/// A `BufMut` that flushes every full megabyte to a writer. Write errors are kept and
/// reported by [`FileSink::finish`] (prost's `encode` cannot report them itself).
pub struct FileSink<'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    error: Option<std::io::Error>,
}

impl<'w> FileSink<'w> {
    pub fn new(out: &'w mut dyn Write) -> FileSink<'w> {
        FileSink {
            out,
            buf: Vec::with_capacity(CHUNK),
            error: None,
        }
    }

    fn flush_buf(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.out.write_all(&self.buf)
        {
            self.error = Some(e);
        }
        self.buf.clear();
    }

    /// Writes what is buffered; the first write error, if any.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.flush_buf();
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

// SAFETY: `chunk_mut` hands out the vector's spare capacity, which is always non-empty
// (the buffer is flushed when full), and `advance_mut` only grows the length over bytes
// the caller has just initialized, never past the capacity.
unsafe impl BufMut for FileSink<'_> {
    fn remaining_mut(&self) -> usize {
        usize::MAX - self.buf.len()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        let len = self.buf.len() + cnt;
        assert!(len <= self.buf.capacity(), "advance_mut past the chunk");
        // SAFETY: the caller initialized `cnt` bytes of the spare capacity.
        unsafe { self.buf.set_len(len) };
        if self.buf.len() == self.buf.capacity() {
            self.flush_buf();
        }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.buf.len() == self.buf.capacity() {
            self.flush_buf();
        }
        UninitSlice::uninit(self.buf.spare_capacity_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn streams_the_same_bytes_as_encode_to_vec() {
        let t = whittle_proto::TensorProto {
            name: Some("w".into()),
            raw_data: Some(vec![7u8; 3 * CHUNK + 17].into()),
            dims: vec![1, 2, 3],
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut sink = FileSink::new(&mut out);
        t.encode(&mut sink).unwrap();
        sink.finish().unwrap();
        assert!(out == t.encode_to_vec());
    }
}
