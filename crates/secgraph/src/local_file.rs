//! Bounded reads of the local files a user names (settings, CA bundles, certificates, keys, query files, caches):
//! the lowest layer, used by every module that reads one.

/// Reads a local file the user named (settings, CA bundle, certificate, key, query file): it must be a regular
/// file (not a device, FIFO or folder, even through a symlink) no larger than `limit` bytes.
pub(crate) fn read(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (devices, pipes and folders are refused)",
        ));
    }
    if meta.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is {} bytes; files larger than {limit} bytes are refused", meta.len()),
        ));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file grew past {limit} bytes while being read; refused"),
        ));
    }
    Ok(buf)
}

/// Largest local file read as a CA bundle, certificate or key.
pub(crate) const MAX_PEM_FILE_BYTES: u64 = 4 * 1024 * 1024;
