// A small OSC 1.0 encoder/decoder and the TCP framing (a big-endian 32-bit length before each
// packet). Written for IdmBridge; used only from its sender thread, never from the audio thread.
//
// Types: i int32, h int64, f float32, d float64, s string, b blob. Bundles are decoded
// (their messages are returned in order); the encoder writes messages only.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace idmosc {

inline void putU32(std::vector<uint8_t>& out, uint32_t v) {
    out.push_back(uint8_t(v >> 24));
    out.push_back(uint8_t(v >> 16));
    out.push_back(uint8_t(v >> 8));
    out.push_back(uint8_t(v));
}

inline uint32_t getU32(const uint8_t* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

inline uint64_t getU64(const uint8_t* p) { return (uint64_t(getU32(p)) << 32) | getU32(p + 4); }

// Builds one message: Message m("/idm/ping"); m.i(1).s("x"); then m.bytes() or m.framed().
class Message {
public:
    explicit Message(const char* address) : address_(address), tags_(",") {}

    Message& i(int32_t v) { tags_ += 'i'; putU32(args_, uint32_t(v)); return *this; }
    Message& h(int64_t v) {
        tags_ += 'h';
        putU32(args_, uint32_t(uint64_t(v) >> 32));
        putU32(args_, uint32_t(uint64_t(v)));
        return *this;
    }
    Message& f(float v) { uint32_t u; std::memcpy(&u, &v, 4); tags_ += 'f'; putU32(args_, u); return *this; }
    Message& d(double v) {
        uint64_t u; std::memcpy(&u, &v, 8); tags_ += 'd';
        putU32(args_, uint32_t(u >> 32)); putU32(args_, uint32_t(u));
        return *this;
    }
    Message& s(const std::string& v) { tags_ += 's'; padString(args_, v); return *this; }
    Message& b(const void* data, size_t n) {
        tags_ += 'b';
        putU32(args_, uint32_t(n));
        const uint8_t* p = static_cast<const uint8_t*>(data);
        args_.insert(args_.end(), p, p + n);
        while (args_.size() % 4) args_.push_back(0);
        return *this;
    }

    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> out;
        out.reserve(address_.size() + tags_.size() + args_.size() + 8);
        padString(out, address_);
        padString(out, tags_);
        out.insert(out.end(), args_.begin(), args_.end());
        return out;
    }

    // The message with its OSC 1.0 stream length prefix.
    std::vector<uint8_t> framed() const {
        std::vector<uint8_t> body = bytes();
        std::vector<uint8_t> out;
        out.reserve(body.size() + 4);
        putU32(out, uint32_t(body.size()));
        out.insert(out.end(), body.begin(), body.end());
        return out;
    }

private:
    static void padString(std::vector<uint8_t>& out, const std::string& v) {
        out.insert(out.end(), v.begin(), v.end());
        out.push_back(0);
        while (out.size() % 4) out.push_back(0);
    }

    std::string address_;
    std::string tags_;
    std::vector<uint8_t> args_;
};

struct Arg {
    char type = 0;
    int64_t i = 0;      // i, h
    double d = 0.0;     // f, d
    std::string s;      // s, and the bytes of b
};

struct Decoded {
    std::string address;
    std::vector<Arg> args;

    bool isInt(size_t k) const { return k < args.size() && (args[k].type == 'i' || args[k].type == 'h'); }
    bool isNum(size_t k) const {
        return k < args.size() && (args[k].type == 'i' || args[k].type == 'h' || args[k].type == 'f' || args[k].type == 'd');
    }
    bool isStr(size_t k) const { return k < args.size() && args[k].type == 's'; }
    double num(size_t k) const { return (args[k].type == 'f' || args[k].type == 'd') ? args[k].d : double(args[k].i); }
};

namespace detail {

// Reads a padded string at p[off..n); returns false when it is not terminated inside the packet.
inline bool readString(const uint8_t* p, size_t n, size_t& off, std::string& out) {
    size_t end = off;
    while (end < n && p[end] != 0) ++end;
    if (end >= n) return false;
    out.assign(reinterpret_cast<const char*>(p + off), end - off);
    off = (end + 4) & ~size_t(3);
    return off <= n;
}

inline bool decodeMessage(const uint8_t* p, size_t n, Decoded& m) {
    size_t off = 0;
    if (n < 4 || p[0] != '/') return false;
    if (!readString(p, n, off, m.address)) return false;
    std::string tags;
    if (off == n) return true;  // no type tag string: a message without arguments
    if (!readString(p, n, off, tags) || tags.empty() || tags[0] != ',') return false;
    for (size_t k = 1; k < tags.size(); ++k) {
        Arg a;
        a.type = tags[k];
        switch (a.type) {
        case 'i':
            if (off + 4 > n) return false;
            a.i = int32_t(getU32(p + off)); off += 4; break;
        case 'h':
            if (off + 8 > n) return false;
            a.i = int64_t(getU64(p + off)); off += 8; break;
        case 'f': {
            if (off + 4 > n) return false;
            uint32_t u = getU32(p + off); float v; std::memcpy(&v, &u, 4); a.d = v; off += 4; break;
        }
        case 'd': {
            if (off + 8 > n) return false;
            uint64_t u = getU64(p + off); double v; std::memcpy(&v, &u, 8); a.d = v; off += 8; break;
        }
        case 's':
            if (!readString(p, n, off, a.s)) return false;
            break;
        case 'b': {
            if (off + 4 > n) return false;
            uint32_t len = getU32(p + off); off += 4;
            if (len > n - off) return false;
            a.s.assign(reinterpret_cast<const char*>(p + off), len);
            off = (off + len + 3) & ~size_t(3);
            if (off > n) return false;
            break;
        }
        case 'T': a.i = 1; break;
        case 'F': case 'N': case 'I': break;
        default:
            return false;  // a type this decoder does not know: its size is unknown
        }
        m.args.push_back(std::move(a));
    }
    return true;
}

inline bool decodeInto(const uint8_t* p, size_t n, std::vector<Decoded>& out, int depth) {
    if (depth > 8) return false;
    if (n >= 8 && std::memcmp(p, "#bundle", 8) == 0) {
        size_t off = 16;  // "#bundle\0" + 8-byte time tag
        if (n < off) return false;
        while (off < n) {
            if (off + 4 > n) return false;
            uint32_t len = getU32(p + off); off += 4;
            if (len > n - off || len % 4) return false;
            if (!decodeInto(p + off, len, out, depth + 1)) return false;
            off += len;
        }
        return true;
    }
    Decoded m;
    if (!decodeMessage(p, n, m)) return false;
    out.push_back(std::move(m));
    return true;
}

}  // namespace detail

// Decodes one packet (a message or a bundle). Returns false for malformed bytes; `out` then holds
// whatever came before the fault.
inline bool decode(const uint8_t* p, size_t n, std::vector<Decoded>& out) {
    if (n % 4) return false;
    return detail::decodeInto(p, n, out, 0);
}

// Splits an OSC 1.0 TCP byte stream into packets. feed() appends received bytes; next() yields
// complete packets. A declared length over maxPacket marks the stream broken (bad() is true).
class FrameReader {
public:
    explicit FrameReader(size_t maxPacket) : max_(maxPacket) {}

    void feed(const uint8_t* p, size_t n) { buf_.insert(buf_.end(), p, p + n); }

    bool next(std::vector<uint8_t>& packet) {
        if (bad_ || buf_.size() - pos_ < 4) return false;
        uint32_t len = getU32(buf_.data() + pos_);
        if (len > max_) { bad_ = true; return false; }
        if (buf_.size() - pos_ - 4 < len) return false;
        packet.assign(buf_.begin() + long(pos_ + 4), buf_.begin() + long(pos_ + 4 + len));
        pos_ += 4 + len;
        if (pos_ == buf_.size()) { buf_.clear(); pos_ = 0; }
        else if (pos_ > (1u << 20)) { buf_.erase(buf_.begin(), buf_.begin() + long(pos_)); pos_ = 0; }
        return true;
    }

    bool bad() const { return bad_; }
    void reset() { buf_.clear(); pos_ = 0; bad_ = false; }

private:
    size_t max_;
    std::vector<uint8_t> buf_;
    size_t pos_ = 0;
    bool bad_ = false;
};

}  // namespace idmosc
