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

const char* sectionName(uint8_t id) {
  static const char* kNames[] = {"custom", "type",   "import", "function", "table",
                                 "memory", "global", "export", "start",    "element",
                                 "code",   "data",   "data count"};
  return id < std::size(kNames) ? kNames[id] : "unknown";
}

// Reads one known section's contents into `info`.
void readSection(uint8_t id, Reader& r, ModuleInfo& info) {
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
      break;
    }
    case 3: {  // function
      uint32_t n = r.u32();
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
    default:
      break;
  }
}

}  // namespace

Result<ModuleInfo> readModuleInfo(std::span<const uint8_t> bytes) {
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
    readSection(id, r, info);
    if (!r.ok()) return invalid(fmt::format("{} section: {}", sectionName(id), r.error()));
    if (!r.atEnd() && id <= 8) {
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
