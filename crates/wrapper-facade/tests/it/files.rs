//! Memory-mapped files, append-only files and advisory locks.

use std::io;

use wrapper_facade::file::{AppendFile, FileLock, FsyncPolicy, LockMode};
use wrapper_facade::mmap::{MappedFile, MappedFileMut};

use super::temp_path;

#[test]
fn mmap_round_trip_through_the_file() {
    // A child spawned by another test between our unlock and relock would hold the lock.
    let _settled = wrapper_facade::process::without_spawns();
    let path = temp_path("mmap-round-trip");
    let mut map = MappedFileMut::create(&path, 4096).unwrap();
    assert_eq!(map.len(), 4096);
    assert!(map.as_slice().iter().all(|&b| b == 0));
    map.as_mut_slice()[..11].copy_from_slice(b"hello, mmap");
    map.as_mut_slice()[4095] = b'!';
    map.flush().unwrap();
    drop(map);

    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[..11], b"hello, mmap");
    assert_eq!(on_disk[4095], b'!');

    let ro = MappedFile::open(&path).unwrap();
    assert_eq!(ro.as_slice(), &on_disk[..]);
    let ro2 = MappedFile::open(&path).unwrap(); // shared locks coexist
    assert_eq!(ro2.len(), 4096);

    // A writer is kept out while readers hold the file.
    let err = MappedFileMut::open(&path).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    drop((ro, ro2));

    let mut rw = MappedFileMut::open(&path).unwrap();
    rw.as_mut_slice()[0] = b'H';
    rw.flush_async().unwrap();
    drop(rw);
    assert_eq!(&std::fs::read(&path).unwrap()[..5], b"Hello");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn empty_file_maps_to_an_empty_slice() {
    let path = temp_path("mmap-empty");
    std::fs::write(&path, b"").unwrap();
    let map = MappedFile::open(&path).unwrap();
    assert!(map.is_empty());
    assert_eq!(map.as_slice(), b"");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn append_file_appends_even_after_someone_else_wrote() {
    let path = temp_path("append");
    let mut log = AppendFile::open(&path, FsyncPolicy::Never).unwrap();
    log.append(b"first\n").unwrap();
    let mut other = AppendFile::open(&path, FsyncPolicy::EveryWrite).unwrap();
    other.append(b"other\n").unwrap();
    log.append(b"second\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first\nother\nsecond\n");
    assert_eq!((log.sync_count(), other.sync_count()), (0, 1));
    assert_eq!(log.unsynced_bytes(), 13);
    log.sync().unwrap();
    assert_eq!((log.sync_count(), log.unsynced_bytes()), (1, 0));
    assert_eq!(log.len().unwrap(), 19);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn shared_locks_coexist_and_exclude_a_writer() {
    // A child spawned by another test between our unlock and relock would hold the lock.
    let _settled = wrapper_facade::process::without_spawns();
    let path = temp_path("flock");
    std::fs::write(&path, b"x").unwrap();
    let (a, b, c) = (
        std::fs::File::open(&path).unwrap(),
        std::fs::File::open(&path).unwrap(),
        std::fs::File::open(&path).unwrap(),
    );
    let ra = FileLock::acquire(&a, LockMode::Shared).unwrap();
    let rb = FileLock::try_acquire(&b, LockMode::Shared).unwrap();
    assert_eq!(rb.mode(), LockMode::Shared);
    let err = FileLock::try_acquire(&c, LockMode::Exclusive).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EWOULDBLOCK));
    drop((ra, rb));
    let w = FileLock::try_acquire(&c, LockMode::Exclusive).unwrap();
    assert_eq!(w.mode(), LockMode::Exclusive);
    std::fs::remove_file(&path).unwrap();
}
