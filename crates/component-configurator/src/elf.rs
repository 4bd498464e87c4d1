//! Reads an exported symbol's bytes from an ELF file without loading it.
//!
//! `dlopen` runs a library's constructors (C++ static initialisers, `.init_array`) before it
//! returns, so asking `dlsym` for our descriptor would already have run foreign code.
//! Reading the dynamic symbol table from the file first lets the host refuse a library that
//! is not ours (ACE's, a random `.so`) without executing a single instruction of it.
//! Every offset read from the file is bounds-checked: the input is untrusted.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Reads bytes at an offset; implemented for files and byte slices.
pub trait ReadAt {
    /// Reads exactly `len` bytes at `offset`, or `None` when they are not there.
    fn read_at_exact(&self, offset: u64, len: usize) -> Option<Vec<u8>>;
}

impl ReadAt for [u8] {
    fn read_at_exact(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

impl ReadAt for File {
    fn read_at_exact(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        // Sizes come from the file itself: never allocate for bytes the file does not have.
        let size = self.metadata().ok()?.len();
        if offset.checked_add(len as u64)? > size {
            return None;
        }
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

/// Why a symbol could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ElfError {
    /// Not a 64-bit little-endian ELF shared object for this machine, or malformed.
    NotElf(String),
    /// The dynamic symbol table has no defined symbol of that name.
    NoSymbol,
    /// The symbol is there but its bytes are not in the file (or it is too small).
    Unreadable(String),
}

impl std::fmt::Display for ElfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElfError::NotElf(why) => write!(f, "not a loadable ELF library ({why})"),
            ElfError::NoSymbol => f.write_str("no exported descriptor symbol"),
            ElfError::Unreadable(why) => write!(f, "the descriptor cannot be read ({why})"),
        }
    }
}

const MAX_SECTIONS: usize = 4096;
const MAX_SYMBOLS: usize = 1 << 20;
const MAX_STRTAB: usize = 64 << 20;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

#[derive(Debug, Clone, Copy)]
struct Section {
    kind: u32,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

/// Reads `len` bytes of the defined dynamic symbol `name` from the ELF image `src`.
pub fn read_symbol(
    src: &(impl ReadAt + ?Sized),
    name: &str,
    len: usize,
) -> Result<Vec<u8>, ElfError> {
    let not_elf = |why: &str| ElfError::NotElf(why.to_owned());
    let header = src
        .read_at_exact(0, 64)
        .ok_or_else(|| not_elf("too short"))?;
    if &header[0..4] != b"\x7fELF" {
        return Err(not_elf("no ELF magic"));
    }
    if header[4] != 2 || header[5] != 1 {
        return Err(not_elf("not 64-bit little-endian"));
    }
    let e_type = u16_at(&header, 16);
    if e_type != 3 {
        return Err(not_elf("not a shared object"));
    }
    #[cfg(target_arch = "x86_64")]
    const MACHINE: u16 = 62;
    #[cfg(target_arch = "aarch64")]
    const MACHINE: u16 = 183;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const MACHINE: u16 = 0;
    if MACHINE != 0 && u16_at(&header, 18) != MACHINE {
        return Err(not_elf("built for another machine"));
    }
    let shoff = u64_at(&header, 40);
    let shentsize = usize::from(u16_at(&header, 58));
    let shnum = usize::from(u16_at(&header, 60));
    if !(64..=1024).contains(&shentsize) || shnum == 0 || shnum > MAX_SECTIONS {
        return Err(not_elf("bad section header table"));
    }
    let table = src
        .read_at_exact(shoff, shentsize * shnum)
        .ok_or_else(|| not_elf("section headers outside the file"))?;
    let sections: Vec<Section> = (0..shnum)
        .map(|i| {
            let s = &table[i * shentsize..];
            Section {
                kind: u32_at(s, 4),
                addr: u64_at(s, 16),
                offset: u64_at(s, 24),
                size: u64_at(s, 32),
                link: u32_at(s, 40),
                entsize: u64_at(s, 56),
            }
        })
        .collect();
    const SHT_DYNSYM: u32 = 11;
    const SHT_NOBITS: u32 = 8;
    let dynsym = sections
        .iter()
        .find(|s| s.kind == SHT_DYNSYM)
        .ok_or_else(|| not_elf("no dynamic symbol table"))?;
    let strtab = sections
        .get(dynsym.link as usize)
        .ok_or_else(|| not_elf("bad string table link"))?;
    let entsize = usize::try_from(dynsym.entsize).unwrap_or(0);
    if !(24..=1024).contains(&entsize) {
        return Err(not_elf("bad symbol size"));
    }
    let count = usize::try_from(dynsym.size).unwrap_or(usize::MAX) / entsize;
    if count > MAX_SYMBOLS {
        return Err(not_elf("too many symbols"));
    }
    let strtab_len = usize::try_from(strtab.size).unwrap_or(usize::MAX);
    if strtab_len > MAX_STRTAB {
        return Err(not_elf("string table too large"));
    }
    let syms = src
        .read_at_exact(dynsym.offset, count * entsize)
        .ok_or_else(|| not_elf("symbols outside the file"))?;
    let strings = src
        .read_at_exact(strtab.offset, strtab_len)
        .ok_or_else(|| not_elf("strings outside the file"))?;
    for i in 0..count {
        let s = &syms[i * entsize..];
        let name_off = u32_at(s, 0) as usize;
        let shndx = u16_at(s, 6);
        let Some(rest) = strings.get(name_off..) else {
            continue;
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if &rest[..end] != name.as_bytes() || shndx == 0 || shndx >= 0xff00 {
            continue;
        }
        let value = u64_at(s, 8);
        let size = u64_at(s, 16);
        if size < len as u64 {
            return Err(ElfError::Unreadable(format!(
                "the symbol is {size} bytes, expected at least {len}"
            )));
        }
        let section = sections
            .get(usize::from(shndx))
            .ok_or_else(|| ElfError::Unreadable("bad section index".to_owned()))?;
        let delta = value
            .checked_sub(section.addr)
            .filter(|d| d.checked_add(len as u64).is_some_and(|e| e <= section.size))
            .ok_or_else(|| {
                ElfError::Unreadable("the symbol lies outside its section".to_owned())
            })?;
        if section.kind == SHT_NOBITS {
            return Ok(vec![0; len]);
        }
        let offset = section
            .offset
            .checked_add(delta)
            .ok_or_else(|| ElfError::Unreadable("offset overflow".to_owned()))?;
        return src.read_at_exact(offset, len).ok_or_else(|| {
            ElfError::Unreadable("the symbol's bytes are outside the file".to_owned())
        });
    }
    Err(ElfError::NoSymbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_elf() {
        assert!(matches!(
            read_symbol(&b"hello"[..], "x", 4),
            Err(ElfError::NotElf(_))
        ));
        let mut fake = [0u8; 64];
        fake[..4].copy_from_slice(b"\x7fELF");
        fake[4] = 2;
        fake[5] = 1;
        fake[16] = 3;
        fake[18] = 62;
        fake[58] = 64;
        fake[60] = 200; // 200 sections at offset 0 would run past the end
        assert!(matches!(
            read_symbol(&fake[..], "x", 4),
            Err(ElfError::NotElf(_))
        ));
    }

    #[test]
    fn sizes_claimed_by_a_file_are_not_trusted() {
        use std::io::Write;
        // A header claiming a section table far beyond the end of a small file.
        let mut fake = [0u8; 64];
        fake[..4].copy_from_slice(b"\x7fELF");
        fake[4] = 2;
        fake[5] = 1;
        fake[16] = 3;
        fake[18] = 62;
        fake[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
        fake[58] = 64;
        fake[60] = 1;
        let path = std::env::temp_dir().join(format!("cc-elf-{}.so", std::process::id()));
        File::create(&path).unwrap().write_all(&fake).unwrap();
        let file = File::open(&path).unwrap();
        assert!(matches!(
            read_symbol(&file, "x", 4),
            Err(ElfError::NotElf(_))
        ));
        assert_eq!(file.read_at_exact(u64::MAX, 2), None);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn our_own_test_binary_has_no_descriptor() {
        // The test executable is ELF but not a shared object (or has no such symbol).
        let exe = std::env::current_exe().unwrap();
        let file = File::open(exe).unwrap();
        assert!(read_symbol(&file, crate::abi::DESCRIPTOR_SYMBOL, 120).is_err());
    }
}
