//! Where the code is: executable segments of an ELF64 x86-64 file, split
//! into regions that a linear-sweep decoder can start at with confidence.
//!
//! A region starts at a known instruction boundary: the start of an
//! executable section or of a function symbol (`.symtab` and `.dynsym`).
//! Restarting the sweep at every function keeps one stretch of odd bytes
//! (padding, a data island) from shifting the decoder's idea of boundaries
//! beyond the function it sits in.

use object::elf::{self, FileHeader64, ProgramHeader64, SectionHeader64};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, SectionTable, Sym};
use object::LittleEndian;

use super::AbomError;

type Header = FileHeader64<LittleEndian>;
const LE: LittleEndian = LittleEndian;

// e_ident layout (the ELF spec; object has no names for these indices).
const EI_NIDENT: usize = 16;
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;

/// An executable `PT_LOAD` segment, restricted to the bytes backed by the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExecSegment {
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
}

impl ExecSegment {
    fn end(&self) -> u64 {
        self.offset + self.filesz
    }

    /// File offset of `vaddr`, if the segment's file bytes hold it.
    fn offset_of(&self, vaddr: u64) -> Option<u64> {
        let delta = vaddr.checked_sub(self.vaddr)?;
        (delta < self.filesz).then(|| self.offset + delta)
    }

    pub fn vaddr_of(&self, offset: u64) -> u64 {
        self.vaddr + (offset - self.offset)
    }
}

/// A byte range `[start, end)` of the file to decode linearly from `start`.
/// It always lies inside `segment`, so nothing derived from it can cross the
/// end of an executable segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Region {
    pub start: u64,
    pub end: u64,
    pub segment: ExecSegment,
}

/// Check the identification and header, then find the decoding regions.
pub(super) fn code_regions(data: &[u8]) -> Result<Vec<Region>, AbomError> {
    let header = parse_header(data)?;
    let segments = exec_segments(header, data)?;
    let sections = header
        .sections(LE, data)
        .map_err(|e| AbomError::Malformed(format!("section headers: {e}")))?;
    let code_sections = exec_section_ranges(&sections, data);
    let anchors = function_starts(&sections, data, &segments)?;
    Ok(segments
        .iter()
        .flat_map(|seg| split_segment(*seg, &code_sections, &anchors))
        .collect())
}

/// Check an ELF64 header (its first 64 bytes are enough): x86-64, little
/// endian, an executable or shared object.
pub(super) fn check_header(data: &[u8]) -> Result<(), AbomError> {
    parse_header(data).map(|_| ())
}

fn parse_header(data: &[u8]) -> Result<&Header, AbomError> {
    // Check the identification bytes ourselves so the caller learns *which*
    // expectation failed; object's parser folds them into one error.
    let ident = data.get(..EI_NIDENT).ok_or(AbomError::NotElf64)?;
    if ident[..4] != elf::ELFMAG || ident[EI_CLASS] != elf::ELFCLASS64 {
        return Err(AbomError::NotElf64);
    }
    if ident[EI_DATA] != elf::ELFDATA2LSB {
        return Err(AbomError::NotX86_64);
    }
    let header =
        Header::parse(data).map_err(|e| AbomError::Malformed(format!("ELF header: {e}")))?;
    if header.e_machine(LE) != elf::EM_X86_64 {
        return Err(AbomError::NotX86_64);
    }
    match header.e_type(LE) {
        elf::ET_EXEC | elf::ET_DYN => Ok(header),
        other => Err(AbomError::UnsupportedType(other)),
    }
}

fn exec_segments(header: &Header, data: &[u8]) -> Result<Vec<ExecSegment>, AbomError> {
    let phdrs: &[ProgramHeader64<LittleEndian>] = header
        .program_headers(LE, data)
        .map_err(|e| AbomError::Malformed(format!("program headers: {e}")))?;
    let mut segments = Vec::new();
    for (index, ph) in phdrs.iter().enumerate() {
        if ph.p_type(LE) != elf::PT_LOAD || ph.p_flags(LE) & elf::PF_X == 0 {
            continue;
        }
        let seg = ExecSegment {
            offset: ph.p_offset(LE),
            vaddr: ph.p_vaddr(LE),
            filesz: ph.p_filesz(LE),
        };
        let in_file = seg
            .offset
            .checked_add(seg.filesz)
            .is_some_and(|end| end <= data.len() as u64);
        if !in_file {
            return Err(AbomError::Malformed(format!(
                "executable segment {index} (offset {:#x}, size {:#x}) extends past the end of the file ({:#x} bytes)",
                seg.offset,
                seg.filesz,
                data.len()
            )));
        }
        // Every address in the segment must exist: `vaddr_of` (and the
        // decoder's instruction pointer) add offsets to `vaddr`.
        if seg.vaddr.checked_add(seg.filesz).is_none() {
            return Err(AbomError::Malformed(format!(
                "executable segment {index} (vaddr {:#x}, size {:#x}) wraps around the address space",
                seg.vaddr, seg.filesz
            )));
        }
        segments.push(seg);
    }
    Ok(segments)
}

/// File ranges of executable sections that have bytes in the file.
fn exec_section_ranges(
    sections: &SectionTable<'_, FileHeader64<LittleEndian>>,
    data: &[u8],
) -> Vec<(u64, u64)> {
    sections
        .iter()
        .filter(|s: &&SectionHeader64<LittleEndian>| {
            s.sh_type(LE) == elf::SHT_PROGBITS
                && s.sh_flags(LE) & u64::from(elf::SHF_EXECINSTR) != 0
        })
        .map(|s| {
            (
                s.sh_offset(LE),
                s.sh_offset(LE).saturating_add(s.sh_size(LE)),
            )
        })
        .filter(|&(start, end)| start < end && end <= data.len() as u64)
        .collect()
}

/// File offsets of defined function symbols inside executable segments.
fn function_starts(
    sections: &SectionTable<'_, FileHeader64<LittleEndian>>,
    data: &[u8],
    segments: &[ExecSegment],
) -> Result<Vec<u64>, AbomError> {
    let mut starts = Vec::new();
    for table_type in [elf::SHT_SYMTAB, elf::SHT_DYNSYM] {
        let symbols = sections
            .symbols(LE, data, table_type)
            .map_err(|e| AbomError::Malformed(format!("symbol table (type {table_type}): {e}")))?;
        for sym in symbols.iter() {
            if sym.st_type() != elf::STT_FUNC || sym.st_shndx(LE) == elf::SHN_UNDEF {
                continue;
            }
            let vaddr = sym.st_value(LE);
            starts.extend(segments.iter().find_map(|seg| seg.offset_of(vaddr)));
        }
    }
    starts.sort_unstable();
    starts.dedup();
    Ok(starts)
}

/// The regions of one segment: its executable sections (or, with no section
/// headers, the whole segment), each cut at every function start inside it.
fn split_segment(seg: ExecSegment, code_sections: &[(u64, u64)], anchors: &[u64]) -> Vec<Region> {
    let clipped: Vec<(u64, u64)> = code_sections
        .iter()
        .map(|&(start, end)| (start.max(seg.offset), end.min(seg.end())))
        .filter(|&(start, end)| start < end)
        .collect();
    let ranges = if clipped.is_empty() {
        vec![(seg.offset, seg.end())]
    } else {
        clipped
    };
    let mut regions = Vec::new();
    for (start, end) in ranges {
        let mut cursor = start;
        for &anchor in anchors.iter().filter(|&&a| a > start && a < end) {
            if anchor > cursor {
                regions.push(Region {
                    start: cursor,
                    end: anchor,
                    segment: seg,
                });
                cursor = anchor;
            }
        }
        regions.push(Region {
            start: cursor,
            end,
            segment: seg,
        });
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: ExecSegment = ExecSegment {
        offset: 0x1000,
        vaddr: 0x401000,
        filesz: 0x100,
    };

    fn bounds(regions: &[Region]) -> Vec<(u64, u64)> {
        regions.iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn sections_are_clipped_to_the_segment_and_cut_at_functions() {
        let regions = split_segment(
            SEG,
            &[(0xff0, 0x1040), (0x1080, 0x1200)],
            &[0x1010, 0x1090, 0x1300],
        );
        assert_eq!(
            bounds(&regions),
            vec![
                (0x1000, 0x1010),
                (0x1010, 0x1040),
                (0x1080, 0x1090),
                (0x1090, 0x1100)
            ]
        );
    }

    #[test]
    fn without_sections_the_whole_segment_is_one_region() {
        assert_eq!(
            bounds(&split_segment(SEG, &[], &[])),
            vec![(0x1000, 0x1100)]
        );
    }

    #[test]
    fn non_elf_input_is_rejected() {
        assert!(matches!(
            code_regions(b"#!/bin/sh\n"),
            Err(AbomError::NotElf64)
        ));
        assert!(matches!(code_regions(&[]), Err(AbomError::NotElf64)));
    }
}
