#include "wasm/module_info.h"

#include <fmt/format.h>

namespace tern::wasm {

char valTypeLetter(ValType t) {
  switch (t) {
    case ValType::kI32: return 'i';
    case ValType::kI64: return 'I';
    case ValType::kF32: return 'f';
    case ValType::kF64: return 'F';
    case ValType::kV128: return 'v';
    case ValType::kFuncRef: return 'r';
    case ValType::kExternRef: return 'e';
  }
  return '?';
}

const char* valTypeName(ValType t) {
  switch (t) {
    case ValType::kI32: return "i32";
    case ValType::kI64: return "i64";
    case ValType::kF32: return "f32";
    case ValType::kF64: return "f64";
    case ValType::kV128: return "v128";
    case ValType::kFuncRef: return "funcref";
    case ValType::kExternRef: return "externref";
  }
  return "?";
}

const char* externKindName(ExternKind k) {
  switch (k) {
    case ExternKind::kFunc: return "function";
    case ExternKind::kTable: return "table";
    case ExternKind::kMemory: return "memory";
    case ExternKind::kGlobal: return "global";
  }
  return "?";
}

std::string FuncType::signature() const {
  std::string s;
  for (auto p : params) s.push_back(valTypeLetter(p));
  s.push_back(':');
  for (auto r : results) s.push_back(valTypeLetter(r));
  return s;
}

const FuncType* ModuleInfo::functionType(uint32_t funcIndex) const {
  if (funcIndex >= functionTypes.size()) return nullptr;
  uint32_t t = functionTypes[funcIndex];
  return t < types.size() ? &types[t] : nullptr;
}

const Export* ModuleInfo::findExport(std::string_view name) const {
  for (const auto& e : exports) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

namespace {

// Reads the binary format. Every accessor checks bounds and records the first error;
// callers test ok() at natural boundaries.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, size_t base) : bytes_(bytes), base_(base) {}

  bool ok() const { return error_.empty(); }
  bool atEnd() const { return pos_ >= bytes_.size(); }
  size_t offset() const { return base_ + pos_; }
  const std::string& error() const { return error_; }

  void fail(const std::string& what) {
    if (error_.empty()) error_ = fmt::format("{} at offset 0x{:x}", what, offset());
  }
  // Takes the error of a reader of a part of this one's bytes (it names its own offset).
  void failWith(const Reader& inner) {
    if (error_.empty()) error_ = inner.error_;
  }

  uint8_t u8() {
    if (pos_ >= bytes_.size()) {
      fail("unexpected end");
      return 0;
    }
    return bytes_[pos_++];
  }

  // Unsigned LEB128 of at most `bits` bits.
  uint64_t leb(unsigned bits) {
    uint64_t result = 0;
    unsigned shift = 0;
    for (;;) {
      if (pos_ >= bytes_.size()) {
        fail("unexpected end in integer");
        return 0;
      }
      uint8_t b = bytes_[pos_++];
      if (shift >= bits || (shift + 7 > bits && (b & 0x7f) >> (bits - shift) != 0)) {
        fail("integer too large");
        return 0;
      }
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7;
    }
  }
  uint32_t u32() { return static_cast<uint32_t>(leb(32)); }

  // Skips a signed LEB128 of at most `bits` bits.
  void skipSleb(unsigned bits) {
    for (unsigned shift = 0;; shift += 7) {
      if (shift >= bits + 7) {
        fail("integer too large");
        return;
      }
      if (!(u8() & 0x80) || !ok()) return;
    }
  }

  void skip(size_t n) {
    if (n > bytes_.size() - pos_) {
      fail("unexpected end");
      pos_ = bytes_.size();
      return;
    }
    pos_ += n;
  }

  std::string name() {
    uint32_t len = u32();
    if (!ok()) return {};
    if (len > bytes_.size() - pos_) {
      fail("name runs past the end");
      return {};
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }

  std::span<const uint8_t> take(size_t n) {
    if (n > bytes_.size() - pos_) {
      fail("section runs past the end of the file");
      return {};
    }
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

  ValType valType() {
    uint8_t b = u8();
    switch (b) {
      case 0x7f: return ValType::kI32;
      case 0x7e: return ValType::kI64;
      case 0x7d: return ValType::kF32;
      case 0x7c: return ValType::kF64;
      case 0x7b: return ValType::kV128;
      case 0x70: return ValType::kFuncRef;
      case 0x6f: return ValType::kExternRef;
      default:
        if (ok()) fail(fmt::format("unknown value type 0x{:02x}", b));
        return ValType::kI32;
    }
  }

  Limits limits(bool memory) {
    Limits l;
    uint8_t flags = u8();
    if (flags & 0x02) {
      fail(memory ? "shared memories (threads) are not supported" : "invalid table limits");
    } else if (flags & 0x04) {
      fail(memory ? "64-bit memories are not supported" : "invalid table limits");
    } else if (flags > 1) {
      fail(fmt::format("invalid limits flags 0x{:02x}", flags));
    }
    l.initial = leb(32);
    if (flags & 1) l.maximum = leb(32);
    return l;
  }

  // Skips a block type: the empty type, a value type or a type index, all signed LEB128.
  void skipBlockType() { skipSleb(33); }

  // Skips a memory access's alignment, memory index (multi-memory) and offset.
  void skipMemArg() {
    uint32_t align = u32();
    if (align & 0x40) u32();
    leb(64);
  }

  // Skips a constant expression (global initialisers) up to and including its `end`.
  void skipConstExpr() {
    for (;;) {
      uint8_t op = u8();
      if (!ok()) return;
      switch (op) {
        case 0x0b: return;                        // end
        case 0x41: skipSleb(32); break;           // i32.const
        case 0x42: skipSleb(64); break;           // i64.const
        case 0x43: skip(4); break;                // f32.const
        case 0x44: skip(8); break;                // f64.const
        case 0x23: u32(); break;                  // global.get
        case 0xd0: u8(); break;                   // ref.null t
        case 0xd2: u32(); break;                  // ref.func
        case 0x6a: case 0x6b: case 0x6c:          // i32.add/sub/mul (extended const)
        case 0x7c: case 0x7d: case 0x7e: break;   // i64.add/sub/mul
        case 0xfd:                                // v128.const
          if (u32() != 12) {
            fail("unsupported SIMD opcode in constant expression");
            return;
          }
          skip(16);
          break;
        default:
          fail(fmt::format("unsupported opcode 0x{:02x} in constant expression", op));
          return;
      }
    }
  }

 private:
  std::span<const uint8_t> bytes_;
  size_t base_;
  size_t pos_ = 0;
  std::string error_;
};

// Skips the immediates of an instruction with a 0xfc prefix (saturating truncation, bulk
// memory and table instructions); false for an unknown one.
bool skipMiscImmediates(Reader& r, uint32_t op) {
  switch (op) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:  // *.trunc_sat_*
      return true;
    case 9: case 11: case 13: case 15: case 16: case 17:  // data.drop, memory.fill, elem.drop,
      r.u32();                                            // table.grow/size/fill
      return true;
    case 8: case 10: case 12: case 14:  // memory.init, memory.copy, table.init, table.copy
      r.u32();
      r.u32();
      return true;
    default:
      return false;
  }
}

// Skips the immediates of an instruction with a 0xfd prefix (SIMD); false for an unknown one.
bool skipSimdImmediates(Reader& r, uint32_t op) {
  if (op <= 11 || op == 92 || op == 93) {  // loads and stores
    r.skipMemArg();
  } else if (op == 12 || op == 13) {  // v128.const, i8x16.shuffle
    r.skip(16);
  } else if (op >= 21 && op <= 34) {  // extract_lane, replace_lane
    r.u8();
  } else if (op >= 84 && op <= 91) {  // load_lane, store_lane
    r.skipMemArg();
    r.u8();
  } else if (op > 0x113) {  // past relaxed SIMD
    return false;
  }
  return true;
}

// Skips the immediates of an instruction with a 0xfe prefix (atomics); false for an unknown
// one.
bool skipAtomicImmediates(Reader& r, uint32_t op) {
  if (op == 3) {  // atomic.fence
    r.u8();
  } else if (op <= 2 || (op >= 0x10 && op <= 0x4e)) {
    r.skipMemArg();
  } else {
    return false;
  }
  return true;
}

// Reads the body of function `funcIndex`: its local declarations, counted against the
// limit, and its instructions, as far as needed to follow how deeply blocks nest. The
// immediates of every instruction are skipped by their encoding; an opcode outside the
// instruction set is an error, as it is for wasm2c.
void readFunctionBody(Reader& r, uint64_t funcIndex, const ModuleLimits& limits) {
  uint32_t groups = r.u32();
  uint64_t locals = 0;
  for (uint32_t i = 0; i < groups && r.ok(); ++i) {
    locals += r.u32();
    r.valType();
  }
  if (!r.ok()) return;
  if (locals > limits.localsPerFunction) {
    r.fail(fmt::format("function {} declares {} locals (the limit is {} per function)",
                       funcIndex, locals, limits.localsPerFunction));
    return;
  }
  uint64_t nesting = 0;  // blocks open inside the function's own block
  while (r.ok()) {
    uint8_t op = r.u8();
    if (!r.ok()) return;
    switch (op) {
      case 0x02: case 0x03: case 0x04: case 0x06:  // block, loop, if, try
        r.skipBlockType();
        if (++nesting > limits.blockNesting) {
          r.fail(fmt::format("function {} nests blocks deeper than the limit of {}", funcIndex,
                             limits.blockNesting));
          return;
        }
        break;
      case 0x1f: {  // try_table: block type, then catch clauses
        r.skipBlockType();
        uint32_t clauses = r.u32();
        for (uint32_t i = 0; i < clauses && r.ok(); ++i) {
          uint8_t kind = r.u8();
          if (kind <= 1) r.u32();  // catch and catch_ref name a tag
          r.u32();                 // the label
        }
        if (++nesting > limits.blockNesting) {
          r.fail(fmt::format("function {} nests blocks deeper than the limit of {}", funcIndex,
                             limits.blockNesting));
          return;
        }
        break;
      }
      case 0x0b:  // end
      case 0x18:  // delegate: ends a try
        if (op == 0x18) r.u32();
        if (nesting == 0) {
          if (op == 0x18) {
            r.fail(fmt::format("function {} has delegate outside a try", funcIndex));
          } else if (!r.atEnd()) {
            r.fail(fmt::format("function {} has code after its final end", funcIndex));
          }
          return;
        }
        --nesting;
        break;
      case 0x00: case 0x01: case 0x05: case 0x0a: case 0x0f: case 0x19: case 0x1a: case 0x1b:
      case 0xd1: case 0xd3: case 0xd4:
        break;  // no immediates
      case 0x07: case 0x08: case 0x09: case 0x0c: case 0x0d: case 0x10: case 0x12: case 0x14:
      case 0x15: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26:
      case 0x3f: case 0x40: case 0xd2: case 0xd5: case 0xd6:
        r.u32();  // one index or label
        break;
      case 0x11: case 0x13:  // call_indirect, return_call_indirect: type and table
        r.u32();
        r.u32();
        break;
      case 0x0e: {  // br_table: the labels, then the default
        uint32_t n = r.u32();
        for (uint64_t i = 0; i <= n && r.ok(); ++i) r.u32();
        break;
      }
      case 0x1c: {  // select with types
        uint32_t n = r.u32();
        for (uint32_t i = 0; i < n && r.ok(); ++i) r.valType();
        break;
      }
      case 0x41: r.skipSleb(32); break;  // i32.const
      case 0x42: r.skipSleb(64); break;  // i64.const
      case 0x43: r.skip(4); break;       // f32.const
      case 0x44: r.skip(8); break;       // f64.const
      case 0xd0: r.skipSleb(33); break;  // ref.null: heap type
      case 0xfc:
        if (uint32_t sub = r.u32(); r.ok() && !skipMiscImmediates(r, sub)) {
          r.fail(fmt::format("function {} uses unknown opcode 0xfc {}", funcIndex, sub));
        }
        break;
      case 0xfd:
        if (uint32_t sub = r.u32(); r.ok() && !skipSimdImmediates(r, sub)) {
          r.fail(fmt::format("function {} uses unknown opcode 0xfd {}", funcIndex, sub));
        }
        break;
      case 0xfe:
        if (uint32_t sub = r.u32(); r.ok() && !skipAtomicImmediates(r, sub)) {
          r.fail(fmt::format("function {} uses unknown opcode 0xfe {}", funcIndex, sub));
        }
        break;
      default:
        if (op >= 0x28 && op <= 0x3e) {  // loads and stores
          r.skipMemArg();
        } else if (op < 0x45 || op > 0xc4) {  // 0x45-0xc4: numeric, no immediates
          r.fail(fmt::format("function {} uses unknown opcode 0x{:02x}", funcIndex, op));
        }
        break;
    }
  }
}

size_t importedFunctions(const ModuleInfo& info) {
  size_t n = 0;
  for (const auto& im : info.imports) n += im.kind == ExternKind::kFunc;
  return n;
}

const char* sectionName(uint8_t id) {
  static const char* kNames[] = {"custom", "type",   "import", "function", "table",
                                 "memory", "global", "export", "start",    "element",
                                 "code",   "data",   "data count"};
  return id < std::size(kNames) ? kNames[id] : "unknown";
}

// Reads one known section's contents into `info`.
void readSection(uint8_t id, Reader& r, ModuleInfo& info, const ModuleLimits& limits) {
  auto tooManyFunctions = [&](uint64_t n) {
    if (n <= limits.functions) return false;
    r.fail(fmt::format("the module declares {} functions (the limit is {})", n, limits.functions));
    return true;
  };
  switch (id) {
    case 1: {  // type
      uint32_t n = r.u32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        if (r.u8() != 0x60) {
          r.fail("type entry is not a function type");
          return;
        }
        FuncType t;
        uint32_t np = r.u32();
        for (uint32_t k = 0; k < np && r.ok(); ++k) t.params.push_back(r.valType());
        uint32_t nr = r.u32();
        for (uint32_t k = 0; k < nr && r.ok(); ++k) t.results.push_back(r.valType());
        info.types.push_back(std::move(t));
      }
      break;
    }
    case 2: {  // import
      uint32_t n = r.u32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        Import im;
        im.module = r.name();
        im.name = r.name();
        uint8_t kind = r.u8();
        switch (kind) {
          case 0:
            im.kind = ExternKind::kFunc;
            im.typeIndex = r.u32();
            if (r.ok() && im.typeIndex >= info.types.size()) {
              r.fail(fmt::format("import {}.{} uses unknown type {}", im.module, im.name,
                                 im.typeIndex));
            }
            info.functionTypes.push_back(im.typeIndex);
            break;
          case 1:
            im.kind = ExternKind::kTable;
            im.table.elemType = r.valType();
            im.table.limits = r.limits(false);
            info.tables.push_back(im.table);
            break;
          case 2:
            im.kind = ExternKind::kMemory;
            im.memory = r.limits(true);
            info.memories.push_back(im.memory);
            break;
          case 3:
            im.kind = ExternKind::kGlobal;
            im.global.type = r.valType();
            im.global.mutable_ = r.u8() != 0;
            info.globals.push_back(im.global);
            break;
          default:
            if (r.ok()) r.fail(fmt::format("unknown import kind {}", kind));
        }
        info.imports.push_back(std::move(im));
      }
      tooManyFunctions(info.functionTypes.size());
      break;
    }
    case 3: {  // function
      uint32_t n = r.u32();
      if (!r.ok() || tooManyFunctions(uint64_t{n} + info.functionTypes.size())) return;
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        uint32_t t = r.u32();
        if (r.ok() && t >= info.types.size()) {
          r.fail(fmt::format("function uses unknown type {}", t));
        }
        info.functionTypes.push_back(t);
      }
      break;
    }
    case 4: {  // table
      uint32_t n = r.u32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        TableType t;
        t.elemType = r.valType();
        t.limits = r.limits(false);
        info.tables.push_back(t);
      }
      break;
    }
    case 5: {  // memory
      uint32_t n = r.u32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) info.memories.push_back(r.limits(true));
      break;
    }
    case 6: {  // global
      uint32_t n = r.u32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        GlobalType g;
        g.type = r.valType();
        g.mutable_ = r.u8() != 0;
        r.skipConstExpr();
        info.globals.push_back(g);
      }
      break;
    }
    case 7: {  // export
      uint32_t n = r.u32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        Export e;
        e.name = r.name();
        uint8_t kind = r.u8();
        if (kind > 3) {
          if (r.ok()) r.fail(fmt::format("unknown export kind {}", kind));
          return;
        }
        e.kind = static_cast<ExternKind>(kind);
        e.index = r.u32();
        info.exports.push_back(std::move(e));
      }
      break;
    }
    case 8:  // start
      info.start = r.u32();
      break;
    case 10: {  // code
      uint32_t n = r.u32();
      const size_t imported = importedFunctions(info);
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        uint32_t size = r.u32();
        size_t bodyOffset = r.offset();
        auto body = r.take(size);
        if (!r.ok()) return;
        Reader b(body, bodyOffset);
        readFunctionBody(b, imported + i, limits);
        if (!b.ok()) {
          r.failWith(b);
          return;
        }
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

Result<ModuleInfo> readModuleInfo(std::span<const uint8_t> bytes, const ModuleLimits& limits) {
  auto invalid = [](const std::string& msg) { return Error(ErrorCode::kInvalidModule, msg); };
  if (bytes.size() < 8) {
    return invalid(bytes.empty() ? "empty file" : "truncated header (file is " +
                                                      std::to_string(bytes.size()) + " bytes)");
  }
  static constexpr uint8_t kMagic[] = {0x00, 0x61, 0x73, 0x6d};
  if (!std::equal(std::begin(kMagic), std::end(kMagic), bytes.begin())) {
    return invalid("not a WebAssembly binary (bad magic number)");
  }
  if (bytes[4] != 1 || bytes[5] != 0 || bytes[6] != 0 || bytes[7] != 0) {
    return invalid("unsupported binary format version (expected 1)");
  }

  ModuleInfo info;
  Reader outer(bytes.subspan(8), 8);
  uint8_t lastId = 0;
  while (!outer.atEnd()) {
    size_t sectionOffset = outer.offset();
    uint8_t id = outer.u8();
    uint32_t size = outer.u32();
    if (!outer.ok()) return invalid("truncated section header: " + outer.error());
    if (id > 12) {
      return invalid(fmt::format("unknown section id {} at offset 0x{:x}", id, sectionOffset));
    }
    auto body = outer.take(size);
    if (!outer.ok()) {
      return invalid(fmt::format("{} section at offset 0x{:x} declares {} bytes but the file "
                                 "ends first",
                                 sectionName(id), sectionOffset, size));
    }
    if (id == 0) continue;  // custom sections carry no semantics
    // Known sections appear at most once and in order (data count sits before code).
    auto order = [](uint8_t s) { return s == 12 ? 9.5 : static_cast<double>(s); };
    if (lastId != 0 && order(id) <= order(lastId)) {
      return invalid(fmt::format("{} section at offset 0x{:x} is out of order or repeated",
                                 sectionName(id), sectionOffset));
    }
    lastId = id;
    size_t bodyOffset = outer.offset() - size;
    Reader r(body, bodyOffset);
    readSection(id, r, info, limits);
    if (!r.ok()) return invalid(fmt::format("{} section: {}", sectionName(id), r.error()));
    if (!r.atEnd() && (id <= 8 || id == 10)) {
      return invalid(fmt::format("{} section at offset 0x{:x} has {} trailing bytes",
                                 sectionName(id), sectionOffset,
                                 body.size() - (r.offset() - bodyOffset)));
    }
  }
  for (const auto& e : info.exports) {
    size_t limit = e.kind == ExternKind::kFunc     ? info.functionTypes.size()
                   : e.kind == ExternKind::kTable  ? info.tables.size()
                   : e.kind == ExternKind::kMemory ? info.memories.size()
                                                   : info.globals.size();
    if (e.index >= limit) {
      return invalid(fmt::format("export \"{}\" refers to unknown {} {}", e.name,
                                 externKindName(e.kind), e.index));
    }
  }
  if (info.start && *info.start >= info.functionTypes.size()) {
    return invalid(fmt::format("start function {} does not exist", *info.start));
  }
  return info;
}

}  // namespace tern::wasm
