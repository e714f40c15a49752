//! ELF reading for the code layer: the GNU build-id in notes (a loaded image's `PT_NOTE`
//! segments, or a file's), from bytes only: no system call here.

/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;
const PT_NOTE: u32 = 4;
const PT_LOAD: u32 = 1;
const PF_W: u32 = 2;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The GNU build-id among the notes in `notes` (the bytes of one note segment or section).
pub(crate) fn build_id_in_notes(notes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0usize;
    while at + 12 <= notes.len() {
        let namesz = u32_at(notes, at)? as usize;
        let descsz = u32_at(notes, at + 4)? as usize;
        let kind = u32_at(notes, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(namesz.next_multiple_of(4))?;
        let next = desc_at.checked_add(descsz.next_multiple_of(4))?;
        let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && notes.get(name_at..name_at.checked_add(namesz)?)? == b"GNU\0"
        {
            return Some(desc.to_vec());
        }
        at = next;
    }
    None
}

/// The GNU build-id of a little-endian ELF64 file's bytes (from its `PT_NOTE` program headers;
/// for a file without any, the digest of its first segment: see [`content_id`]). `None` if the
/// bytes are not such a file or it has no build-id.
pub(crate) fn build_id_of_elf(file: &[u8]) -> Option<Vec<u8>> {
    build_id_by(&mut |at, len| file.get(at..at.checked_add(len)?).map(<[u8]>::to_vec))
}

/// [`build_id_of_elf`] reading only the parts of the file it needs: `read(offset, len)` gives
/// those bytes of the file (`None` past its end). The header, the program headers, the notes
/// (and, without notes, the first segment).
pub(crate) fn build_id_by(
    read: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let head = read(0, 64)?;
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1).
    if head.get(0..4)? != b"\x7fELF" || head.get(4)? != &2 || head.get(5)? != &1 {
        return None;
    }
    let phoff = u64_at(&head, 0x20)? as usize;
    let phentsize = u16_at(&head, 0x36)? as usize;
    let phnum = u16_at(&head, 0x38)? as usize;
    let phdrs = read(phoff, phnum.checked_mul(phentsize)?)?;
    let mut first_load = None;
    let mut any_note = false;
    for i in 0..phnum {
        let ph = i.checked_mul(phentsize)?;
        match u32_at(&phdrs, ph)? {
            PT_NOTE => {
                any_note = true;
                let offset = u64_at(&phdrs, ph.checked_add(8)?)? as usize;
                let size = u64_at(&phdrs, ph.checked_add(32)?)? as usize;
                if let Some(id) = build_id_in_notes(&read(offset, size)?) {
                    return Some(id);
                }
            }
            PT_LOAD if first_load.is_none() => first_load = Some(ph),
            _ => {}
        }
    }
    if any_note {
        return None;
    }
    // No notes (rustup's libstd): the first segment, if it maps the file from its start
    // read-only (what loading leaves as it is).
    let ph = first_load?;
    let flags = u32_at(&phdrs, ph.checked_add(4)?)?;
    let offset = u64_at(&phdrs, ph.checked_add(8)?)?;
    let filesz = u64_at(&phdrs, ph.checked_add(32)?)?;
    if offset != 0 || flags & PF_W != 0 {
        return None;
    }
    Some(content_id(&read(0, filesz as usize)?))
}

/// The identity of an object linked without a build-id: a 128-bit FNV-1a digest of the bytes
/// of its first loadable segment (see [`build_id_by`]), the same from the file and from the
/// loaded image (a fixed algorithm: copies of this library built by other compilers agree).
pub(crate) fn content_id(head: &[u8]) -> Vec<u8> {
    const BASIS: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let mut h = BASIS;
    for &b in head {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    let mut id = b"fnv".to_vec();
    id.extend_from_slice(&h.to_be_bytes());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: u32, name: &[u8], desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.resize(v.len().next_multiple_of(4), 0);
        v.extend_from_slice(desc);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    #[test]
    fn the_build_id_note_is_found_after_other_notes() {
        let mut notes = note(1, b"GNU\0", &[9; 16]); // NT_GNU_ABI_TAG
        notes.extend(note(NT_GNU_BUILD_ID, b"XYZ\0", &[7; 20])); // another vendor's type 3
        notes.extend(note(NT_GNU_BUILD_ID, b"GNU\0", &[1, 2, 3, 4, 5]));
        assert_eq!(build_id_in_notes(&notes), Some(vec![1, 2, 3, 4, 5]));
        assert_eq!(build_id_in_notes(&notes[..notes.len() - 8]), None);
        assert_eq!(build_id_of_elf(b"not an elf file at all, not at all"), None);
    }

    #[test]
    fn an_object_without_notes_is_identified_by_its_first_segment() {
        let mut file = std::fs::read("/proc/self/exe").unwrap();
        let noted = build_id_of_elf(&file).expect("the linker adds a build-id");
        assert!(!noted.starts_with(b"fnv"));
        // The same file with its notes' program headers blanked (PT_NULL), as rustup's libstd.
        let phoff = u64_at(&file, 0x20).unwrap() as usize;
        let (size, count) = (u16_at(&file, 0x36).unwrap(), u16_at(&file, 0x38).unwrap());
        for i in 0..count as usize {
            let ph = phoff + i * size as usize;
            if u32_at(&file, ph) == Some(PT_NOTE) {
                file[ph..ph + 4].copy_from_slice(&0u32.to_le_bytes());
            }
        }
        let id = build_id_of_elf(&file).expect("a digest stands for the build-id");
        assert!(id.starts_with(b"fnv") && id.len() == 19, "{id:?}");
        assert_eq!(build_id_of_elf(&file), Some(id.clone()));
        // Another build (a byte of the first segment differs): another identity.
        file[9] ^= 1; // e_ident padding
        assert_ne!(build_id_of_elf(&file), Some(id));
    }

    #[test]
    fn offsets_near_the_end_of_the_address_space_are_no_build_id_not_a_panic() {
        // A little-endian ELF64 header whose program headers would start at u64::MAX - 1.
        let mut file = vec![0u8; 64];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        file[0x20..0x28].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
        file[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        file[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(build_id_of_elf(&file), None);
        // One PT_NOTE header (at 64) whose segment's offset is near the end too.
        file[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&PT_NOTE.to_le_bytes());
        ph[8..16].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
        ph[32..40].copy_from_slice(&16u64.to_le_bytes());
        file.extend(ph);
        assert_eq!(build_id_of_elf(&file), None);
        // A note whose name size runs past the end of the address space.
        let mut notes = note(NT_GNU_BUILD_ID, b"GNU\0", &[1; 4]);
        notes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(build_id_in_notes(&notes), None);
    }
}
