//! The dynamic loader's calls: the list of loaded objects with what the code layer needs of
//! each (`dl_iterate_phdr`: load base, segments, notes, DT_NEEDED and DT_SONAME read from the
//! loaded image), and `dlopen` with the loader's own error text (`dlerror`).

#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::{CStr, CString, c_void};
use std::path::Path;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_NOTE: u32 = 4;
const DT_NULL: i64 = 0;
const DT_NEEDED: i64 = 1;
const DT_STRTAB: i64 = 5;
const DT_STRSZ: i64 = 10;
const DT_SONAME: i64 = 14;

/// One `PT_LOAD` segment of a loaded object, relative to its load base.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) vaddr: usize,
    pub(crate) memsz: usize,
    /// `PF_X`: the segment holds code.
    pub(crate) executable: bool,
    /// `PF_R`: the segment may be read.
    readable: bool,
}

impl Segment {
    /// True if `offset` (from the load base) lies inside this segment.
    pub(crate) fn contains(&self, offset: usize) -> bool {
        offset >= self.vaddr && offset - self.vaddr < self.memsz
    }
}

/// What the code layer needs of one loaded object, copied out of the loader's data.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    /// The loader's name for it (`dlpi_name`): empty for the main executable.
    pub(crate) name: Vec<u8>,
    /// Its load base (`dlpi_addr`): addresses in it are `base + offset`.
    pub(crate) base: usize,
    pub(crate) segments: Vec<Segment>,
    /// The bytes of each `PT_NOTE` segment, as loaded.
    pub(crate) notes: Vec<Vec<u8>>,
    /// For an object with no `PT_NOTE` segment: the file bytes of its first `PT_LOAD` segment
    /// if that one maps the file from its start read-only (headers, symbol tables: left as in
    /// the file by loading), what identifies an object linked without a build-id.
    pub(crate) head: Option<Vec<u8>>,
    /// Its `DT_NEEDED` entries, as loaded.
    pub(crate) needed: Vec<Vec<u8>>,
    pub(crate) soname: Option<Vec<u8>>,
}

/// An `Elf64_Dyn` (libc has no type for it).
#[repr(C)]
struct Dyn {
    tag: i64,
    val: u64,
}

/// Copies the loaded image's bytes `[addr, addr + len)` if they lie inside one of its readable
/// `PT_LOAD` segments (mapped while the object is loaded).
fn copy_loaded(image: &Image, addr: usize, len: usize) -> Option<Vec<u8>> {
    let off = addr.checked_sub(image.base)?;
    let seg = image
        .segments
        .iter()
        .find(|s| s.readable && s.contains(off))?;
    if off.checked_add(len)? > seg.vaddr + seg.memsz {
        return None;
    }
    let mut v = vec![0u8; len];
    // SAFETY: the range lies inside a readable PT_LOAD segment of an object the loader reports
    // as loaded (we are inside dl_iterate_phdr's callback, which holds the loader's lock, so it
    // cannot be unloaded meanwhile), and such a segment is mapped readable; `v` has room for
    // `len` bytes.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, v.as_mut_ptr(), len) };
    Some(v)
}

/// Reads the dynamic section at `addr` (already relocated): DT_NEEDED and DT_SONAME strings.
fn read_dynamic(image: &mut Image, addr: usize) {
    let mut entries = Vec::new();
    let mut at = addr;
    loop {
        let Some(bytes) = copy_loaded(image, at, std::mem::size_of::<Dyn>()) else {
            return;
        };
        let mut tag = [0u8; 8];
        let mut val = [0u8; 8];
        tag.copy_from_slice(&bytes[0..8]);
        val.copy_from_slice(&bytes[8..16]);
        let d = Dyn {
            tag: i64::from_ne_bytes(tag),
            val: u64::from_ne_bytes(val),
        };
        if d.tag == DT_NULL || entries.len() > 4096 {
            break;
        }
        entries.push(d);
        at += std::mem::size_of::<Dyn>();
    }
    let find = |t: i64| entries.iter().find(|d| d.tag == t).map(|d| d.val as usize);
    let (Some(mut strtab), Some(strsz)) = (find(DT_STRTAB), find(DT_STRSZ)) else {
        return;
    };
    // glibc relocates the dynamic section's pointers in place on x86_64; the vDSO's and other
    // loaders' may be left relative to the base.
    if strtab < image.base {
        strtab += image.base;
    }
    let Some(table) = copy_loaded(image, strtab, strsz) else {
        return;
    };
    let string = |off: usize| -> Option<Vec<u8>> {
        let rest = table.get(off..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(rest[..end].to_vec())
    };
    for d in &entries {
        match d.tag {
            DT_NEEDED => {
                if let Some(s) = string(d.val as usize) {
                    image.needed.push(s);
                }
            }
            DT_SONAME => image.soname = string(d.val as usize),
            _ => {}
        }
    }
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> libc::c_int {
    // SAFETY: glibc passes a valid info for the duration of the call, and `data` is the
    // `Vec<Image>` that `loaded_images` passed, borrowed by nothing else during the call.
    let (info, out) = unsafe { (&*info, &mut *(data as *mut Vec<Image>)) };
    let name = if info.dlpi_name.is_null() {
        Vec::new()
    } else {
        // SAFETY: a non-null dlpi_name is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_bytes()
            .to_vec()
    };
    let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader gives `dlpi_phnum` program headers at `dlpi_phdr`, valid during the
        // callback.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
    };
    let mut image = Image {
        name,
        base: info.dlpi_addr as usize,
        segments: Vec::new(),
        notes: Vec::new(),
        head: None,
        needed: Vec::new(),
        soname: None,
    };
    for p in phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        image.segments.push(Segment {
            vaddr: p.p_vaddr as usize,
            memsz: p.p_memsz as usize,
            executable: p.p_flags & libc::PF_X != 0,
            readable: p.p_flags & libc::PF_R != 0,
        });
    }
    for p in phdrs {
        let addr = image.base.wrapping_add(p.p_vaddr as usize);
        match p.p_type {
            PT_NOTE => {
                if let Some(bytes) = copy_loaded(&image, addr, p.p_memsz as usize) {
                    image.notes.push(bytes);
                }
            }
            PT_DYNAMIC => read_dynamic(&mut image, addr),
            _ => {}
        }
    }
    if !phdrs.iter().any(|p| p.p_type == PT_NOTE)
        && let Some(first) = phdrs.iter().find(|p| p.p_type == PT_LOAD)
        && first.p_offset == 0
        && first.p_flags & libc::PF_W == 0
    {
        let addr = image.base.wrapping_add(first.p_vaddr as usize);
        image.head = copy_loaded(&image, addr, first.p_filesz as usize);
    }
    out.push(image);
    0
}

/// Every object loaded in this process, in the loader's order (the main executable first).
pub(crate) fn loaded_images() -> Vec<Image> {
    let mut out: Vec<Image> = Vec::new();
    // SAFETY: the callback only reads what the loader hands it (checked against the object's
    // segments) and pushes to the Vec passed as data, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(collect), (&mut out as *mut Vec<Image>).cast()) };
    out
}

/// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`. The object stays loaded for the life of the process
/// (its handle is never closed: code handed out from it must stay valid). On failure, the
/// loader's `dlerror()` text, word for word.
pub(crate) fn dlopen_now_local(path: &Path) -> Result<(), String> {
    open(path).map(|_| ())
}

/// Loads `path` as [`dlopen_now_local`] does and returns the address of its symbol `symbol`
/// (`dlsym` on the object's own handle: the object and its dependencies, not the program). On
/// failure, the loader's `dlerror()` text, word for word.
pub(crate) fn dlopen_symbol(path: &Path, symbol: &std::ffi::CStr) -> Result<usize, String> {
    let handle = open(path)?;
    // SAFETY: clears a pending error (dlerror has no precondition).
    unsafe { libc::dlerror() };
    // SAFETY: a handle dlopen returned (never closed) and a NUL-terminated name.
    let addr = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
    if addr.is_null() {
        return Err(last_error().unwrap_or_else(|| "the symbol's address is null".into()));
    }
    Ok(addr as usize)
}

/// The loader's pending error text, if any (copied at once).
fn last_error() -> Option<String> {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl call on
    // this thread; it is copied at once.
    let err = unsafe { libc::dlerror() };
    if err.is_null() {
        return None;
    }
    // SAFETY: see above: a non-null dlerror result is a NUL-terminated string.
    Some(
        unsafe { CStr::from_ptr(err) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`, the handle kept for the life of the process.
fn open(path: &Path) -> Result<*mut c_void, String> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return Err("the path contains a NUL byte".into());
    };
    // SAFETY: a NUL-terminated path and valid flags; the handle is deliberately kept (never
    // closed). Loading runs the object's constructors, which is what loading code means.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if !handle.is_null() {
        return Ok(handle);
    }
    Err(last_error().unwrap_or_else(|| "dlopen failed and the loader gave no message".into()))
}
