#!/usr/bin/env node
// Which glibc a Linux binary needs: reads the ELF file's version needs
// (.gnu.version_r, SHT_GNU_verneed), the list the dynamic loader checks when
// it loads the file (and from which `objdump -T` names each symbol's version),
// with no binutils needed.
//   node scripts/glibc-needs.js FILE.node   → the GLIBC_ versions it needs
'use strict'

const fs = require('node:fs')

const SHT_GNU_VERNEED = 0x6ffffffe

/** Compares dotted versions numerically ('2.17' < '2.3.4' is false). */
function compareVersions(a, b) {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** The version needs of a 64-bit little-endian ELF file: [{ file, name }], e.g. { file: 'libc.so.6', name: 'GLIBC_2.14' }. */
function versionNeeds(file) {
  const elf = fs.readFileSync(file)
  if (elf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`)
  if (elf[4] !== 2 || elf[5] !== 1) throw new Error(`${file}: only 64-bit little-endian ELF files are read`)
  const shoff = Number(elf.readBigUInt64LE(0x28))
  const shentsize = elf.readUInt16LE(0x3a)
  const shnum = elf.readUInt16LE(0x3c)
  const section = (i) => {
    const at = shoff + i * shentsize
    return {
      type: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
      link: elf.readUInt32LE(at + 0x28),
      info: elf.readUInt32LE(at + 0x2c),
    }
  }
  const needs = []
  for (let i = 0; i < shnum; i++) {
    const verneed = section(i)
    if (verneed.type !== SHT_GNU_VERNEED) continue
    const strtab = section(verneed.link)
    const string = (at) => {
      const start = strtab.offset + at
      return elf.toString('latin1', start, elf.indexOf(0, start))
    }
    // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
    // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
    let entry = verneed.offset
    for (let n = 0; n < verneed.info; n++) {
      const count = elf.readUInt16LE(entry + 2)
      const lib = string(elf.readUInt32LE(entry + 4))
      let aux = entry + elf.readUInt32LE(entry + 8)
      for (let k = 0; k < count; k++) {
        needs.push({ file: lib, name: string(elf.readUInt32LE(aux + 8)) })
        const next = elf.readUInt32LE(aux + 12)
        if (next === 0) break
        aux += next
      }
      const next = elf.readUInt32LE(entry + 12)
      if (next === 0) break
      entry += next
    }
  }
  return needs
}

/** The GLIBC_ versions a file needs, lowest first, e.g. ['2.2.5', '2.3', '2.14']. */
function glibcVersions(file) {
  const versions = new Set()
  for (const { name } of versionNeeds(file)) {
    const m = /^GLIBC_(\d+(?:\.\d+)+)$/.exec(name)
    if (m) versions.add(m[1])
  }
  return [...versions].sort(compareVersions)
}

/** The highest GLIBC_ version a file needs, or null when it needs none. */
function highestGlibc(file) {
  const versions = glibcVersions(file)
  return versions.length ? versions[versions.length - 1] : null
}

module.exports = { versionNeeds, glibcVersions, highestGlibc, compareVersions }

if (require.main === module) {
  const file = process.argv[2]
  if (!file) {
    console.error('usage: node scripts/glibc-needs.js FILE')
    process.exit(2)
  }
  const versions = glibcVersions(file)
  console.log(`${file}: needs GLIBC ${versions.join(', ') || '(none)'}; highest ${versions[versions.length - 1] ?? '(none)'}`)
}
