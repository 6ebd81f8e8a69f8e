//! Reading the configuration file and the files it names: regular files
//! only (after following symlinks, which is how ConfigMaps and Secrets are
//! mounted) and up to a size, so that a FIFO, a device or `/dev/zero` is a
//! clear error instead of a hang or an exhausted memory.

use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is larger than {}", size(*.0))]
    TooLarge(u64),
}

/// The whole file at `path`, at most `max` bytes. Opened without blocking
/// (a FIFO would otherwise wait for a writer forever) and checked to be a
/// regular file before a byte is read.
pub(crate) fn read(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    // The kind first, for a clear message (opening a socket fails with a
    // cryptic ENXIO); then again on the opened file, in case it was swapped.
    regular(std::fs::metadata(path)?.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    regular(meta.file_type())?;
    if meta.len() > max {
        return Err(ReadError::TooLarge(max));
    }
    let mut bytes = Vec::new();
    // It may grow while being read.
    File::take(file, max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(max));
    }
    Ok(bytes)
}

fn regular(kind: FileType) -> Result<(), ReadError> {
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something else"
    };
    Err(ReadError::NotRegular(what))
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn message(path: &Path, max: u64) -> String {
        read(path, max).expect_err("refused").to_string()
    }

    #[test]
    fn reads_regular_files_and_symlinks_to_them_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("backstop.yaml");
        std::fs::write(&file, "service: x\n").unwrap();
        // A ConfigMap: a symlink to a symlink to the file.
        let data = dir.path().join("..data");
        std::os::unix::fs::symlink(&file, &data).unwrap();
        let link = dir.path().join("config.yaml");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        assert_eq!(read(&link, 11).unwrap(), b"service: x\n");
        assert_eq!(message(&link, 10), "it is larger than 10 bytes");
        assert_eq!(
            message(dir.path(), 10),
            "it is a directory, not a regular file"
        );
    }

    #[test]
    fn endless_and_blocking_files_are_refused_at_once() {
        let started = Instant::now();
        assert_eq!(
            message(Path::new("/dev/zero"), MAX_CONFIG_BYTES),
            "it is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        assert_eq!(
            message(&fifo, MAX_CONFIG_BYTES),
            "it is a FIFO, not a regular file"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(size(MAX_CONFIG_BYTES), "1 MiB");
        assert_eq!(size(64 * 1024), "64 KiB");
    }
}
