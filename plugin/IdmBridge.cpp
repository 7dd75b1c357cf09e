// IdmBridge: a stereo pass-through that streams the track to `idm-host serve` (TCP, OSC 1.0
// framing) and plays the drum hits that come back as MIDI, on the exact sample frame.
//
// Threads:
//  - the host's audio thread runs run(): copies input to output, appends the block to a
//    preallocated lock-free ring (or counts it dropped), and writes MIDI from an immutable hit
//    table published through an atomic pointer. It never locks, allocates, does I/O or waits.
//  - one sender thread drains the ring into takes held in memory, talks to the server over a
//    non-blocking socket (so draining never waits on the network), reads the hits back and
//    publishes new hit tables.
//  - host threads call getState()/setState(); they share the analysis with the sender thread
//    under a mutex the audio thread never touches.
#include "DistrhoPlugin.hpp"

#include "drum_maps.h"
#include "osc.hpp"
#include "ring.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

START_NAMESPACE_DISTRHO

namespace {

enum ParamIds : uint32_t {
    kParamCapture = 0,  // 0 off, 1 while the transport plays, 2 always (armed)
    kParamPlayHits,     // play the analysis's hits as MIDI while the transport plays
    kParamDrumMap,      // index into kDrumMapNames
    kParamDropped,      // output: frames the audio thread could not queue (ring full)
    kParamConnected,    // output: 1 while connected to the server
    kParamHits,         // output: hits in the current analysis
    kParamTakes,        // output: takes whose hits came back
    kParamEdit,         // trigger: open the last take in idm-studio; its saved edits come back
    kParamCount
};

enum StateIds : uint32_t { kStateHost = 0, kStatePort, kStateDrumMap, kStateAnalysis, kStateStatus, kStateStudio,
                          kStateCount };
const char* const kStateKeys[kStateCount] = {"host", "port", "drum_map", "analysis", "status", "studio"};

enum CaptureMode { kCaptureOff = 0, kCaptureWhilePlaying = 1, kCaptureAlways = 2 };

// Ring record: a header of kHeaderWords words, then frames * 2 interleaved float32 samples.
constexpr uint32_t kMagic = 0x1D3B0000u;
constexpr uint32_t kFlagGap = 1u;  // audio before this block was dropped
constexpr uint32_t kFlagEnd = 2u;  // capture stopped: end the take (no samples)
constexpr size_t kHeaderWords = 5;  // magic|flags, frames, rate, frame lo, frame hi
constexpr size_t kRingWords = size_t(1) << 23;  // 32 MiB: 87 s of stereo at 48 kHz
constexpr uint32_t kMaxRecordFrames = 4096;

constexpr uint32_t kChunkFrames = 16384;           // frames per /idm/audio/chunk
constexpr double kIdleEndS = 1.0;                  // a take with no new audio for this long ends
constexpr double kMaxTakeS = 300.0;                // longer takes are split (the server caps streams)
constexpr size_t kMaxQueuedBytes = size_t(1) << 30; // audio held for a slow or absent server
constexpr double kConnectTimeoutS = 2.0;
constexpr double kRetryS = 2.0;
constexpr double kNoteLengthS = 0.05;              // as idm_host.midi.DEFAULT_NOTE_LENGTH_S
constexpr uint8_t kDrumChannel = 9;                // General MIDI channel 10
constexpr double kCloseDrainS = 3.0;               // at most this long is spent flushing on close

double nowS() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int symbolIndex(const std::string& s) {
    for (int k = 0; k < kNumSymbols; ++k)
        if (s == kClassSymbols[k]) return k;
    return -1;
}

int drumMapIndex(const std::string& name) {
    for (int k = 0; k < kNumDrumMaps; ++k)
        if (name == kDrumMapNames[k]) return k;
    return -1;
}

struct Hit {
    int64_t frame;   // on the host's timeline
    uint8_t symbol;  // index into kClassSymbols
    uint8_t velocity; // MIDI 1..127
    bool operator<(const Hit& o) const { return frame != o.frame ? frame < o.frame : symbol < o.symbol; }
};

struct NoteEv {
    int64_t frame;
    uint8_t status, note, velocity;
};

// An immutable list of MIDI events sorted by frame; the audio thread reads it, the sender
// thread replaces it and frees old ones once the audio thread has moved on.
struct HitTable {
    uint64_t version = 0;
    std::vector<NoteEv> events;
};

// A take: audio captured contiguously, sent as one stream.
struct Item {
    enum Kind { Begin, Data, End } kind;
    explicit Item(Kind k) : kind(k) {}
    int64_t frame = 0;    // Begin: timeline frame of the first sample
    uint32_t rate = 0;    // Begin
    std::vector<float> samples;  // Data: interleaved stereo
};

struct Pending {  // a take sent, its hits not back yet
    int64_t start = 0, frames = 0;
    double nextAsk = 0.0;  // when to ask again with /idm/hits (after a reconnect)
    int asks = 0;
    std::vector<Hit> hits;
    bool edit = false;  // the hits saved in idm-studio (/idm/edit/hits), not the analysis's
};

}  // namespace

class IdmBridge : public Plugin {
public:
    IdmBridge()
        : Plugin(kParamCount, 0, kStateCount),
          ring_(kRingWords),
          drumMap_(kDefaultDrumMap) {
        streamBase_ = int32_t(((uint32_t(getpid()) * 2654435761u) ^ uint32_t(nowS() * 1000.0)) & 0x7ffe) + 1;
        // a secret for this instance: with it the server gives a take's hits to a new connection
        std::random_device rd;
        char key[33];
        std::snprintf(key, sizeof key, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
        key_ = key;
        sender_ = std::thread([this] { senderLoop(); });
    }

    ~IdmBridge() override {
        stop_.store(true);
        if (sender_.joinable()) sender_.join();
        if (HitTable* t = table_.load()) delete t;
        for (HitTable* t : retired_) delete t;
    }

protected:
    const char* getLabel() const override { return "IdmBridge"; }
    const char* getDescription() const override {
        return "Streams the track to idm-host serve and plays the drum hits it finds as MIDI.";
    }
    const char* getMaker() const override { return "idm-host"; }
    const char* getHomePage() const override { return "https://github.com/idm-host/idm-host"; }
    const char* getLicense() const override { return "ISC"; }
    uint32_t getVersion() const override { return d_version(0, 1, 0); }
    int64_t getUniqueId() const override { return d_cconst('I', 'd', 'm', 'B'); }

    void initAudioPort(bool input, uint32_t index, AudioPort& port) override {
        port.groupId = kPortGroupStereo;
        Plugin::initAudioPort(input, index, port);
    }

    // One parameter's description: hints, name, symbol and range (default, minimum, maximum).
    static void describe(Parameter& p, uint32_t hints, const char* name, const char* symbol,
                         float def, float min, float max) {
        p.hints = hints;
        p.name = name;
        p.symbol = symbol;
        p.ranges = ParameterRanges(def, min, max);
    }

    // The labels of an enumerated parameter's values 0, 1, ... (the host offers only these).
    static void enumerate(Parameter& p, const char* const* labels, int count) {
        ParameterEnumerationValue* v = new ParameterEnumerationValue[count];
        for (int k = 0; k < count; ++k) { v[k].value = float(k); v[k].label = labels[k]; }
        p.enumValues.count = count;
        p.enumValues.restrictedMode = true;
        p.enumValues.values = v;
    }

    void initParameter(uint32_t index, Parameter& p) override {
        static const char* const kCaptureNames[] = {"Off", "While playing", "Always"};
        const uint32_t automatable = kParameterIsAutomatable | kParameterIsInteger;
        const uint32_t output = kParameterIsOutput | kParameterIsInteger;
        switch (index) {
        case kParamCapture:
            describe(p, automatable, "Capture", "capture", kCaptureWhilePlaying, 0, 2);
            enumerate(p, kCaptureNames, 3);
            break;
        case kParamPlayHits:
            describe(p, automatable | kParameterIsBoolean, "Play hits", "play_hits", 1, 0, 1);
            break;
        case kParamDrumMap:
            describe(p, automatable, "Drum map", "drum_map", kDefaultDrumMap, 0, kNumDrumMaps - 1);
            enumerate(p, kDrumMapNames, kNumDrumMaps);
            break;
        case kParamDropped: describe(p, output, "Dropped frames", "dropped_frames", 0, 0, 1e9f); break;
        case kParamConnected: describe(p, output | kParameterIsBoolean, "Connected", "connected", 0, 0, 1); break;
        case kParamHits: describe(p, output, "Hits", "hits", 0, 0, 1e7f); break;
        case kParamTakes: describe(p, output, "Takes analysed", "takes", 0, 0, 1e6f); break;
        case kParamEdit:  // a switch, not a DPF trigger (hosts do not all deliver those): each turn-on edits
            describe(p, automatable | kParameterIsBoolean, "Edit in idm-studio", "edit", 0, 0, 1);
            break;
        }
    }

    void initState(uint32_t index, State& s) override {
        s.key = kStateKeys[index];
        s.hints = 0;
        switch (index) {
        case kStateHost: s.defaultValue = "127.0.0.1"; s.label = "Server host"; s.hints = kStateIsHostWritable; break;
        case kStatePort: s.defaultValue = "9001"; s.label = "Server TCP port"; s.hints = kStateIsHostWritable; break;
        case kStateDrumMap: s.defaultValue = kDrumMapNames[kDefaultDrumMap]; s.label = "Drum map"; break;
        case kStateAnalysis: s.defaultValue = ""; s.label = "Last analysis"; break;
        case kStateStatus: s.defaultValue = ""; s.label = "Status"; s.hints = kStateIsHostReadable; break;
        case kStateStudio: s.defaultValue = "idm-studio"; s.label = "Editor program"; s.hints = kStateIsHostWritable; break;
        }
    }

    float getParameterValue(uint32_t index) const override {
        switch (index) {
        case kParamCapture: return float(capture_.load(std::memory_order_relaxed));
        case kParamPlayHits: return playHits_.load(std::memory_order_relaxed) ? 1.f : 0.f;
        case kParamDrumMap: return float(drumMap_.load(std::memory_order_relaxed));
        case kParamDropped: return float(dropped_.load(std::memory_order_relaxed));
        case kParamConnected: return connected_.load(std::memory_order_relaxed) ? 1.f : 0.f;
        case kParamHits: return float(hitCount_.load(std::memory_order_relaxed));
        case kParamTakes: return float(takesDone_.load(std::memory_order_relaxed));
        case kParamEdit: return editSwitch_.load(std::memory_order_relaxed) ? 1.f : 0.f;
        }
        return 0.f;
    }

    // May be called on the audio thread (VST3, CLAP): atomics only.
    void setParameterValue(uint32_t index, float value) override {
        switch (index) {
        case kParamCapture: capture_.store(std::min(2, std::max(0, int(std::lround(value))))); break;
        case kParamPlayHits: playHits_.store(value >= 0.5f); break;
        case kParamDrumMap:
            drumMap_.store(std::min(kNumDrumMaps - 1, std::max(0, int(std::lround(value)))));
            break;
        case kParamEdit: {
            const bool on = value >= 0.5f;
            if (on && !editSwitch_.exchange(on)) editRequested_.store(true);  // the sender thread does the work
            else editSwitch_.store(on);
            break;
        }
        default: break;
        }
    }

    String getState(const char* key) const override {
        const std::string k(key);
        if (k == "host" || k == "port" || k == "studio") {
            std::lock_guard<std::mutex> g(configMutex_);
            return String((k == "host" ? host_ : k == "studio" ? studio_ : std::to_string(port_)).c_str());
        }
        if (k == "drum_map") return String(kDrumMapNames[drumMap_.load()]);
        if (k == "analysis") {
            std::lock_guard<std::mutex> g(hitsMutex_);
            return String(serializeHits().c_str());
        }
        if (k == "status") {
            std::lock_guard<std::mutex> g(statusMutex_);
            return String(statusText().c_str());
        }
        return String();
    }

    void setState(const char* key, const char* value) override {
        const std::string k(key), v(value ? value : "");
        if (k == "host") {
            std::lock_guard<std::mutex> g(configMutex_);
            if (!v.empty()) host_ = v;
            configVersion_.fetch_add(1);
        } else if (k == "port") {
            char* end = nullptr;
            long p = std::strtol(v.c_str(), &end, 10);
            if (end && *end == 0 && p > 0 && p < 65536) {
                std::lock_guard<std::mutex> g(configMutex_);
                port_ = int(p);
                configVersion_.fetch_add(1);
            } else {
                log("state: port '" + v + "' is not a TCP port (1..65535); kept " + std::to_string(port_));
            }
        } else if (k == "studio") {
            std::lock_guard<std::mutex> g(configMutex_);
            if (!v.empty()) studio_ = v;
        } else if (k == "drum_map") {
            int m = drumMapIndex(v);
            if (m >= 0) drumMap_.store(m);
            else log("state: unknown drum map '" + v + "'; kept " + kDrumMapNames[drumMap_.load()]);
        } else if (k == "analysis") {
            std::vector<Hit> hits;
            std::string err;
            if (!parseHits(v, hits, err)) {
                log("state: the saved analysis could not be read (" + err + "); it was ignored");
                return;
            }
            std::lock_guard<std::mutex> g(hitsMutex_);
            hits_ = std::move(hits);
            publishLocked();
        }
    }

    void activate() override { rate_.store(uint32_t(std::lround(getSampleRate()))); }

    void deactivate() override {
        // the audio thread is not running here, so this thread may act as the ring's producer
        if (capturing_ && pushEnd()) capturing_ = false;
    }

    void sampleRateChanged(double r) override { rate_.store(uint32_t(std::lround(r))); }

    // ------------------------------------------------------------------------------ audio thread
    void run(const float** inputs, float** outputs, uint32_t frames) override {
        const auto t0 = std::chrono::steady_clock::now();  // vDSO clock: no system call, no lock
        process(inputs, outputs, frames);
        const uint64_t ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - t0).count());
        runCalls_.fetch_add(1, std::memory_order_relaxed);
        runNs_.fetch_add(ns, std::memory_order_relaxed);
        if (ns > runMaxNs_.load(std::memory_order_relaxed)) runMaxNs_.store(ns, std::memory_order_relaxed);
    }

private:
    void process(const float** inputs, float** outputs, uint32_t frames) {
        for (int c = 0; c < 2; ++c)
            if (outputs[c] != inputs[c]) std::memmove(outputs[c], inputs[c], sizeof(float) * frames);

        const TimePosition& tp = getTimePosition();
        const bool playing = tp.playing;
        const int mode = capture_.load(std::memory_order_relaxed);
        const bool want = mode == kCaptureAlways || (mode == kCaptureWhilePlaying && playing);
        const uint64_t frame = playing ? tp.frame : freeFrame_;
        freeFrame_ += frames;

        if (want && frames > 0) {
            for (uint32_t off = 0; off < frames; off += kMaxRecordFrames) {
                const uint32_t n = std::min(kMaxRecordFrames, frames - off);
                pushBlock(inputs[0] + off, inputs[1] + off, n, frame + off);
            }
            capturing_ = true;
        } else if (capturing_) {
            if (pushEnd()) capturing_ = false;
        }

        HitTable* table = table_.load(std::memory_order_acquire);
        seenVersion_.store(table ? table->version : 0, std::memory_order_release);
        const bool play = playHits_.load(std::memory_order_relaxed);
        if (wasPlaying_ && (!playing || !play)) allNotesOff();
        wasPlaying_ = playing && play;
        if (play && playing && table && !table->events.empty()) {
            const int64_t start = int64_t(tp.frame), end = start + int64_t(frames);
            auto it = std::lower_bound(table->events.begin(), table->events.end(), start,
                                       [](const NoteEv& e, int64_t f) { return e.frame < f; });
            for (; it != table->events.end() && it->frame < end; ++it) {
                MidiEvent me;
                me.frame = uint32_t(it->frame - start);
                me.size = 3;
                me.data[0] = it->status;
                me.data[1] = it->note;
                me.data[2] = it->velocity;
                me.data[3] = 0;
                me.dataExt = nullptr;
                if (!writeMidiEvent(me)) midiDropped_.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }

    // Audio thread (or deactivate): one block into the ring, or counted as dropped.
    void pushBlock(const float* l, const float* r, uint32_t n, uint64_t frame) {
        const size_t need = kHeaderWords + size_t(n) * 2;
        if (!ring_.room(need)) {
            dropped_.fetch_add(n, std::memory_order_relaxed);
            gap_ = true;
            return;
        }
        const uint64_t h = ring_.head();
        *ring_.slot(h) = kMagic | (gap_ ? kFlagGap : 0u);
        *ring_.slot(h + 1) = n;
        *ring_.slot(h + 2) = rate_.load(std::memory_order_relaxed);
        *ring_.slot(h + 3) = uint32_t(frame);
        *ring_.slot(h + 4) = uint32_t(frame >> 32);
        uint64_t pos = h + kHeaderWords;
        for (uint32_t k = 0; k < n; ++k) {
            std::memcpy(ring_.slot(pos++), l + k, 4);
            std::memcpy(ring_.slot(pos++), r + k, 4);
        }
        ring_.commit(need);
        gap_ = false;
    }

    bool pushEnd() {
        if (!ring_.room(kHeaderWords)) return false;
        const uint32_t rec[kHeaderWords] = {kMagic | kFlagEnd, 0, 0, 0, 0};
        return ring_.write2(rec, kHeaderWords, nullptr, 0);
    }

    void allNotesOff() {
        MidiEvent me;
        me.frame = 0;
        me.size = 3;
        me.data[0] = uint8_t(0xB0 | kDrumChannel);
        me.data[1] = 123;
        me.data[2] = 0;
        me.data[3] = 0;
        me.dataExt = nullptr;
        writeMidiEvent(me);
    }

    // ----------------------------------------------------------------------------- status/log
    // One line of the status log (the last 12 kept); a line repeating the previous one is
    // counted, not added, so a peer that keeps sending the same error cannot flood the log.
    void log(const std::string& line) const {
        std::lock_guard<std::mutex> g(statusMutex_);
        if (!log_.empty() && line == lastLine_) {
            ++repeats_;
            log_.back() = line + " (" + std::to_string(repeats_ + 1) + " times)";
            return;
        }
        std::fprintf(stderr, "IdmBridge: %s\n", line.c_str());
        lastLine_ = line;
        repeats_ = 0;
        log_.push_back(line);
        while (log_.size() > 12) log_.pop_front();
    }

    std::string statusText() const {
        std::ostringstream o;
        o << "dropped_frames " << dropped_.load() << "\nconnected " << (connected_.load() ? 1 : 0)
          << "\nhits " << hitCount_.load() << "\ntakes " << takesDone_.load()
          << "\nframes_sent " << framesSent_.load() << "\nmidi_dropped " << midiDropped_.load()
          << "\nrun_calls " << runCalls_.load() << "\nrun_ns_total " << runNs_.load() << "\nrun_ns_max "
          << runMaxNs_.load() << "\n";
        for (const std::string& l : log_) o << "log " << l << "\n";
        return o.str();
    }

    // ------------------------------------------------------------------------- analysis (locked)
    std::string serializeHits() const {
        std::ostringstream o;
        o << "idm-bridge-analysis 1\n";
        for (const Hit& h : hits_) o << h.frame << ' ' << kClassSymbols[h.symbol] << ' ' << int(h.velocity) << '\n';
        return o.str();
    }

    static bool parseHits(const std::string& text, std::vector<Hit>& out, std::string& err) {
        if (text.empty()) return true;
        std::istringstream in(text);
        std::string line;
        if (!std::getline(in, line) || line != "idm-bridge-analysis 1") {
            err = "no 'idm-bridge-analysis 1' header";
            return false;
        }
        int lineNo = 1;
        while (std::getline(in, line)) {
            ++lineNo;
            if (line.empty()) continue;
            std::istringstream ls(line);
            long long frame; std::string sym; int vel;
            if (!(ls >> frame >> sym >> vel) || frame < 0 || vel < 1 || vel > 127 || symbolIndex(sym) < 0) {
                err = "line " + std::to_string(lineNo) + " is not 'frame class velocity'";
                return false;
            }
            out.push_back(Hit{frame, uint8_t(symbolIndex(sym)), uint8_t(vel)});
        }
        std::sort(out.begin(), out.end());
        return true;
    }

    // Build and publish a new table from hits_ (hitsMutex_ held).
    void publishLocked() {
        const int map = drumMap_.load();
        const double rate = rate_.load() ? double(rate_.load()) : 48000.0;
        const int64_t length = std::max<int64_t>(1, int64_t(std::llround(kNoteLengthS * rate)));
        HitTable* t = new HitTable;
        t->version = ++version_;
        std::map<int, int64_t> nextOn;  // note -> frame of its next note-on, walking backwards
        std::vector<NoteEv> ev;
        ev.reserve(hits_.size() * 2);
        for (size_t k = hits_.size(); k-- > 0;) {
            const Hit& h = hits_[k];
            const uint8_t note = kDrumMapNotes[map][kSymbolColumn[h.symbol]];
            auto it = nextOn.find(note);
            int64_t len = length;
            if (it != nextOn.end()) len = std::min(len, it->second - h.frame);
            nextOn[note] = h.frame;
            ev.push_back(NoteEv{h.frame, uint8_t(0x90 | kDrumChannel), note, h.velocity});
            if (len > 0) ev.push_back(NoteEv{h.frame + len, uint8_t(0x80 | kDrumChannel), note, 0});
        }
        // by frame; at one frame note-offs first, then note-ons by note
        std::sort(ev.begin(), ev.end(), [](const NoteEv& a, const NoteEv& b) {
            if (a.frame != b.frame) return a.frame < b.frame;
            if ((a.status & 0xF0) != (b.status & 0xF0)) return (a.status & 0xF0) < (b.status & 0xF0);
            return a.note < b.note;
        });
        t->events = std::move(ev);
        HitTable* old = table_.exchange(t, std::memory_order_acq_rel);
        if (old) retired_.push_back(old);
        tableMap_ = map;
        hitCount_.store(hits_.size());
        reclaimLocked();
    }

    void reclaimLocked() {
        const uint64_t seen = seenVersion_.load(std::memory_order_acquire);
        auto keep = retired_.begin();
        for (HitTable* t : retired_) {
            if (t->version < seen) delete t;  // the audio thread has loaded a newer table since
            else *keep++ = t;
        }
        retired_.erase(keep, retired_.end());
    }

    // ---------------------------------------------------------------------------- sender thread
    void senderLoop() {
        double stopAt = 0.0;
        while (true) {
            const double now = nowS();
            drain(now);
            if (stop_.load()) {
                if (stopAt == 0.0) {
                    stopAt = now + kCloseDrainS;
                    if (takeOpen_) { queueEnd(); takeOpen_ = false; }
                }
                const bool idle = queue_.empty() && out_.size() == outPos_;
                if (idle || now > stopAt || fd_ < 0) break;
            }
            net(now);
            {
                std::lock_guard<std::mutex> g(hitsMutex_);
                if (tableMap_ != drumMap_.load()) publishLocked();
                else if (!retired_.empty()) reclaimLocked();
            }
            const bool busy = takeOpen_ || !queue_.empty() || out_.size() > outPos_;
            waitSocket(busy ? 1 : 10);
        }
        closeSocket("");
    }

    // Ring -> takes in memory. Fast: never waits on the network.
    void drain(double now) {
        uint32_t hdr[kHeaderWords];
        size_t moved = 0;
        while (ring_.readable() >= kHeaderWords && moved < (size_t(1) << 24)) {
            ring_.peek(hdr, kHeaderWords);
            const uint32_t flags = hdr[0] & 0xffffu;
            const uint32_t n = hdr[1];
            const size_t words = kHeaderWords + size_t(n) * 2;
            if ((hdr[0] & 0xffff0000u) != kMagic || ring_.readable() < words) break;  // cannot happen
            const uint32_t rate = hdr[2];
            const int64_t frame = int64_t(uint64_t(hdr[3]) | (uint64_t(hdr[4]) << 32));
            if (flags & kFlagEnd) {
                if (takeOpen_) queueEnd();
                takeOpen_ = false;
                ring_.consume(words);
                continue;
            }
            const bool cont = takeOpen_ && !(flags & kFlagGap) && frame == takeNext_ && rate == takeRate_ &&
                              double(takeNext_ - takeStart_) < kMaxTakeS * rate;
            if (!cont) {
                if (takeOpen_) queueEnd();
                Item b{Item::Begin};
                b.frame = frame;
                b.rate = rate;
                queue_.push_back(std::move(b));
                takeOpen_ = true;
                takeStart_ = frame;
                takeRate_ = rate;
            }
            if (queuedBytes_ + size_t(n) * 8 > kMaxQueuedBytes) {
                dropped_.fetch_add(n);
                if (!memoryFull_) log("more than 1 GiB of audio waits for the server; frames are being dropped");
                memoryFull_ = true;
                queueEnd();  // the take is broken here; the rest starts a new one
                takeOpen_ = false;
                ring_.consume(words);
                continue;
            }
            memoryFull_ = false;
            if (queue_.empty() || queue_.back().kind != Item::Data || queue_.back().samples.size() >= kChunkFrames * 2) {
                Item d{Item::Data};
                d.samples.reserve(kChunkFrames * 2);
                queue_.push_back(std::move(d));
            }
            // a record never spans two chunks' worth: fill up, then continue in a new chunk
            size_t done = 0;
            while (done < n) {
                Item& last = queue_.back();
                const size_t space = kChunkFrames - last.samples.size() / 2;
                const size_t take = std::min(space, size_t(n) - done);
                const size_t at = last.samples.size();
                last.samples.resize(at + take * 2);
                ring_.peek(reinterpret_cast<uint32_t*>(last.samples.data() + at), take * 2, kHeaderWords + done * 2);
                done += take;
                if (done < n) {
                    Item d{Item::Data};
                    d.samples.reserve(kChunkFrames * 2);
                    queue_.push_back(std::move(d));
                }
            }
            queuedBytes_ += size_t(n) * 8;
            ring_.consume(words);
            takeNext_ = frame + n;
            lastData_ = now;
            moved += words;
        }
        if (takeOpen_ && now - lastData_ > kIdleEndS) {
            queueEnd();
            takeOpen_ = false;
        }
    }

    void queueEnd() { queue_.push_back(Item{Item::End}); }

    // Queue -> socket, socket -> hits. Non-blocking throughout.
    void net(double now) {
        if (configVersion_.load() != seenConfig_ && fd_ >= 0 && !streamOpen_) closeSocket("server address changed");
        if (fd_ >= 0 && connecting_) finishConnect(now);
        if (fd_ >= 0 && !connecting_) {
            readSocket();
            if (fd_ >= 0) askAgain(now);
        }
        // hits still owed after a lost connection: reconnect and ask for them again
        if (fd_ < 0 && !connecting_ && !pending_.empty() && queue_.empty() && now >= retryAt_) {
            if (++reconnects_ > 30) {
                log("the server stayed unreachable; the hits of " + std::to_string(pending_.size()) +
                    " take(s) were given up");
                pending_.clear();
                reconnects_ = 0;
            } else {
                startConnect(now);
            }
        }
        edit(now);
        // encode the next items while the output buffer is small
        while (!queue_.empty() && (out_.size() - outPos_) < (size_t(1) << 20)) {
            Item& it = queue_.front();
            if (it.kind == Item::Begin) {
                if (fd_ < 0 && !connecting_) {
                    if (now < retryAt_) { discardTake("the server is not reachable"); continue; }
                    startConnect(now);
                }
                if (connecting_) break;  // wait for the connection (bounded by kConnectTimeoutS)
                if (fd_ < 0) { discardTake("the server is not reachable"); continue; }
                streamId_ = streamBase_ * 65536 + int32_t(streamCounter_++ & 0xffff);
                streamSeq_ = 0;
                streamStart_ = it.frame;
                streamFrames_ = 0;
                streamOpen_ = true;
                idmosc::Message m("/idm/audio/begin");
                m.i(streamId_).i(int32_t(it.rate)).i(2).i(0).h(it.frame).s(key_);
                append(m);
            } else if (it.kind == Item::Data) {
                queuedBytes_ -= it.samples.size() * 4;
                if (streamOpen_ && fd_ >= 0) {
                    idmosc::Message m("/idm/audio/chunk");
                    m.i(streamId_).i(streamSeq_++).b(it.samples.data(), it.samples.size() * 4);
                    append(m);
                    streamFrames_ += int64_t(it.samples.size() / 2);
                    framesSent_.fetch_add(it.samples.size() / 2);
                }
            } else {
                if (streamOpen_ && fd_ >= 0) {
                    idmosc::Message m("/idm/audio/end");
                    m.i(streamId_);
                    append(m);
                    Pending p;
                    p.start = streamStart_;
                    p.frames = streamFrames_;
                    p.nextAsk = now + 1e9;  // the hits come by themselves; asked for only after a reconnect
                    pending_[streamId_] = std::move(p);
                    spans_[streamId_] = std::make_pair(streamStart_, streamFrames_);
                }
                streamOpen_ = false;
            }
            queue_.pop_front();
        }
        flush();
    }

    // Drop the queued take at the front, saying why. What of it is still to be captured is dropped
    // as it reaches the front (Data with no stream open).
    void discardTake(const char* why) {
        const int64_t start = queue_.front().frame;
        queue_.pop_front();  // the Begin
        while (!queue_.empty() && queue_.front().kind == Item::Data) {
            queuedBytes_ -= queue_.front().samples.size() * 4;
            queue_.pop_front();
        }
        if (!queue_.empty() && queue_.front().kind == Item::End) queue_.pop_front();
        std::string where;
        {
            std::lock_guard<std::mutex> g(configMutex_);
            where = host_ + ":" + std::to_string(port_);
        }
        log(std::string(why) + " at " + where + "; the take from frame " + std::to_string(start) +
            " was not analysed (audio still passes through)");
    }

    void append(const idmosc::Message& m) {
        const std::vector<uint8_t> f = m.framed();
        if (outPos_ == out_.size()) { out_.clear(); outPos_ = 0; }
        out_.insert(out_.end(), f.begin(), f.end());
    }

    void flush() {
        while (fd_ >= 0 && !connecting_ && outPos_ < out_.size()) {
            ssize_t k = ::send(fd_, out_.data() + outPos_, out_.size() - outPos_, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) { outPos_ += size_t(k); continue; }
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
            closeSocket(std::string("sending failed: ") + std::strerror(errno));
            return;
        }
        if (outPos_ == out_.size() && out_.capacity() > (size_t(4) << 20)) { out_.clear(); out_.shrink_to_fit(); outPos_ = 0; }
    }

    void startConnect(double now) {
        std::string host;
        int port;
        {
            std::lock_guard<std::mutex> g(configMutex_);
            host = host_;
            port = port_;
            seenConfig_ = configVersion_.load();
        }
        retryAt_ = now + kRetryS;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        const std::string portText = std::to_string(port);
        int rc = getaddrinfo(host.c_str(), portText.c_str(), &hints, &res);
        if (rc != 0 || !res) {
            log("cannot resolve server host '" + host + "': " + gai_strerror(rc));
            return;
        }
        int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
        if (fd < 0) { freeaddrinfo(res); log(std::string("socket: ") + std::strerror(errno)); return; }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int buf = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        if (rc < 0 && errno != EINPROGRESS) {
            log("cannot connect to " + host + ":" + portText + ": " + std::strerror(errno));
            ::close(fd);
            return;
        }
        fd_ = fd;
        connecting_ = true;
        connectDeadline_ = now + kConnectTimeoutS;
        reader_.reset();
        finishConnect(now);
    }

    void finishConnect(double now) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, 0) > 0) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                std::string where;
                {
                    std::lock_guard<std::mutex> g(configMutex_);
                    where = host_ + ":" + std::to_string(port_);
                }
                closeSocket("cannot connect to " + where + ": " + std::strerror(err));
                return;
            }
            connecting_ = false;
            reconnects_ = 0;
            connected_.store(true);
            log("connected to the server");
            for (auto& kv : pending_) kv.second.nextAsk = now;  // ask for hits that may have been lost
            return;
        }
        if (now > connectDeadline_) closeSocket("connecting timed out");
    }

    void closeSocket(const std::string& why) {
        if (fd_ < 0) return;
        ::close(fd_);
        fd_ = -1;
        connecting_ = false;
        connected_.store(false);
        out_.clear();
        outPos_ = 0;
        reader_.reset();
        retryAt_ = nowS() + kRetryS;
        if (streamOpen_) {
            streamOpen_ = false;
            log(why + "; the take being sent (" + std::to_string(streamFrames_) +
                " frames so far) was not analysed; audio still passes through");
            // drop the rest of this take: everything queued up to its End
            while (!queue_.empty() && queue_.front().kind == Item::Data) {
                queuedBytes_ -= queue_.front().samples.size() * 4;
                queue_.pop_front();
            }
            if (!queue_.empty() && queue_.front().kind == Item::End) queue_.pop_front();
        } else if (!why.empty()) {
            log(why);
        }
    }

    void waitSocket(int ms) {
        if (fd_ < 0) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); return; }
        pollfd p{fd_, short(POLLIN | (connecting_ || outPos_ < out_.size() ? POLLOUT : 0)), 0};
        ::poll(&p, 1, ms);
    }

    void readSocket() {
        uint8_t buf[65536];
        for (int rounds = 0; rounds < 64 && fd_ >= 0; ++rounds) {
            ssize_t k = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (k > 0) {
                reader_.feed(buf, size_t(k));
                std::vector<uint8_t> packet;
                while (reader_.next(packet)) handlePacket(packet);
                if (reader_.bad()) { closeSocket("the server sent a frame larger than 16 MiB (not OSC 1.0?)"); return; }
                continue;
            }
            if (k == 0) { closeSocket("the server closed the connection"); return; }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            closeSocket(std::string("receiving failed: ") + std::strerror(errno));
            return;
        }
    }

    void handlePacket(const std::vector<uint8_t>& packet) {
        std::vector<idmosc::Decoded> msgs;
        if (!idmosc::decode(packet.data(), packet.size(), msgs)) {
            if (++garbage_ <= 3) log("ignored a malformed OSC packet of " + std::to_string(packet.size()) + " bytes from the server");
        }
        for (const idmosc::Decoded& m : msgs) handleMessage(m);
    }

    void handleMessage(const idmosc::Decoded& m) {
        if (m.address == "/idm/hit/frame") {
            // i:id s:class h:frame f:velocity d:time_s i:midi_velocity
            if (!(m.isInt(0) && m.isStr(1) && m.isInt(2) && m.isNum(3) && m.isInt(5))) return badReply(m);
            auto it = pending_.find(int32_t(m.args[0].i));
            const int sym = symbolIndex(m.args[1].s);
            const int64_t vel = m.args[5].i;
            if (it == pending_.end() || sym < 0 || vel < 1 || vel > 127 || m.args[2].i < 0) return badReply(m);
            it->second.hits.push_back(Hit{m.args[2].i, uint8_t(sym), uint8_t(vel)});
        } else if (m.address == "/idm/hits/end") {
            if (!(m.isInt(0) && m.isInt(1))) return badReply(m);
            auto it = pending_.find(int32_t(m.args[0].i));
            if (it == pending_.end()) return;
            Pending p = std::move(it->second);
            pending_.erase(it);
            if (int64_t(p.hits.size()) != m.args[1].i) {
                log("take " + std::to_string(m.args[0].i) + ": " + std::to_string(p.hits.size()) + " hits arrived of " +
                    std::to_string(m.args[1].i) + "; asking again");
                p.hits.clear();
                p.nextAsk = nowS();
                pending_[int32_t(m.args[0].i)] = std::move(p);
                return;
            }
            mergeTake(p);
            if (p.edit) {
                log("take " + std::to_string(m.args[0].i) + ": " + std::to_string(p.hits.size()) +
                    " hits as saved in the editor");
                return;
            }
            lastTake_ = int32_t(m.args[0].i);
            takesDone_.fetch_add(1);
            log("take " + std::to_string(m.args[0].i) + " analysed: " + std::to_string(p.hits.size()) + " hits over " +
                std::to_string(p.frames) + " frames from frame " + std::to_string(p.start));
        } else if (m.address == "/idm/edit/session") {
            if (!(m.isInt(0) && m.isStr(1)) || m.args[1].s.empty()) return badReply(m);
            editId_ = int32_t(m.args[0].i);
            editPath_ = m.args[1].s;
            editAsked_ = false;
            editMtime_ = sessionMtime();
            openEditor();
        } else if (m.address == "/idm/error") {
            const int64_t id = m.isInt(0) ? m.args[0].i : 0;
            const std::string text = m.isStr(1) ? m.args[1].s : std::string("(no message)");
            if (id == lastTake_ && editAsked_ && text.find("still running") != std::string::npos) {
                editWanted_ = true;  // the server is still writing the take's files: ask again soon
                editRetryAt_ = nowS() + 0.5;
                return;
            }
            auto it = pending_.find(int32_t(id));
            if (it != pending_.end() && text.find("still running") != std::string::npos) {
                it->second.nextAsk = nowS() + 2.0;  // asked too early after a reconnect
                return;
            }
            if (it != pending_.end() && it->second.asks > 0) pending_.erase(it);  // the server no longer has it
            log("server: " + text);
        } else if (m.address == "/idm/progress" || m.address == "/idm/hit" ||
                   m.address == "/idm/stems" || m.address == "/idm/midi" || m.address == "/idm/done" ||
                   m.address == "/idm/pong") {
            // known replies this plug-in does not need
        } else if (++garbage_ <= 3) {
            log("ignored an unexpected reply '" + m.address.substr(0, 64) + "' from the server");
        }
    }

    void badReply(const idmosc::Decoded& m) {
        if (++garbage_ <= 3) log("ignored a malformed '" + m.address.substr(0, 64) + "' reply from the server");
    }

    void askAgain(double now) {
        for (auto it = pending_.begin(); it != pending_.end();) {
            Pending& p = it->second;
            if (now < p.nextAsk) { ++it; continue; }
            if (++p.asks > 30) {
                log("take " + std::to_string(it->first) + ": the server did not give its hits after 30 requests; given up");
                it = pending_.erase(it);
                continue;
            }
            p.hits.clear();
            p.nextAsk = now + 5.0;
            idmosc::Message m(p.edit ? "/idm/edit/hits" : "/idm/hits");
            m.i(it->first).s(key_);
            append(m);
            ++it;
        }
    }

    // ------------------------------------------------------------------------- edit round trip
    // "Edit": ask the server for a session of the last take, open it in the editor program; when
    // the session is saved there (its session.json changes), ask for the saved hits.
    void edit(double now) {
        if (editRequested_.exchange(false)) {
            if (lastTake_ == 0) log("edit: no analysed take yet; play the section with capture on first");
            else editWanted_ = true;
        }
        if (editWanted_ && now >= editRetryAt_) {
            if (fd_ < 0 && !connecting_ && now >= retryAt_) startConnect(now);
            if (fd_ >= 0 && !connecting_) {
                idmosc::Message m("/idm/edit");
                m.i(lastTake_).s(key_);
                append(m);
                editWanted_ = false;
                editAsked_ = true;
            }
        }
        for (auto it = children_.begin(); it != children_.end();) {  // reap editors that exited
            int st = 0;
            if (::waitpid(*it, &st, WNOHANG) == *it) it = children_.erase(it);
            else ++it;
        }
        if (editPath_.empty() || now < nextEditPoll_) return;
        nextEditPoll_ = now + 0.25;
        const int64_t mt = sessionMtime();
        if (mt == editMtime_ || mt == 0) return;
        editMtime_ = mt;
        auto span = spans_.find(editId_);
        if (span == spans_.end()) return;
        Pending p;
        p.start = span->second.first;
        p.frames = span->second.second;
        p.edit = true;
        p.nextAsk = now;  // sent by askAgain() once connected
        pending_[editId_] = std::move(p);
    }

    int64_t sessionMtime() const {
        struct stat st;
        if (::stat((editPath_ + "/session.json").c_str(), &st) != 0) return 0;
        return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }

    void openEditor() {
        std::string studio;
        {
            std::lock_guard<std::mutex> g(configMutex_);
            studio = studio_;
        }
        std::vector<char*> argv = {const_cast<char*>(studio.c_str()), const_cast<char*>(editPath_.c_str()), nullptr};
        pid_t pid = 0;
        const int rc = ::posix_spawnp(&pid, studio.c_str(), nullptr, nullptr, argv.data(), environ);
        if (rc != 0) {
            log("edit: cannot start '" + studio + "': " + std::strerror(rc) + " (set the plug-in's 'studio' state "
                "to the editor's path); the session is " + editPath_);
            return;
        }
        children_.push_back(pid);
        log("edit: opened " + editPath_ + " in " + studio + "; saved edits come back here");
    }

    // Replace the hits inside the take's span with the take's hits.
    void mergeTake(const Pending& p) {
        std::lock_guard<std::mutex> g(hitsMutex_);
        const int64_t a = p.start, b = p.start + p.frames;
        hits_.erase(std::remove_if(hits_.begin(), hits_.end(), [&](const Hit& h) { return h.frame >= a && h.frame < b; }),
                    hits_.end());
        hits_.insert(hits_.end(), p.hits.begin(), p.hits.end());
        std::sort(hits_.begin(), hits_.end());
        publishLocked();
    }

    // ------------------------------------------------------------------------------- members
    idmring::Ring ring_;
    std::atomic<int> capture_{kCaptureWhilePlaying};
    std::atomic<bool> playHits_{true};
    std::atomic<int> drumMap_;
    std::atomic<uint32_t> rate_{48000};
    std::atomic<uint64_t> dropped_{0};
    std::atomic<uint64_t> midiDropped_{0};
    std::atomic<uint64_t> framesSent_{0};
    std::atomic<uint64_t> hitCount_{0};
    std::atomic<uint64_t> takesDone_{0};
    std::atomic<bool> connected_{false};
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> runCalls_{0}, runNs_{0}, runMaxNs_{0};  // the audio thread's own cost

    // audio thread only
    uint64_t freeFrame_ = 0;
    bool capturing_ = false;
    bool gap_ = false;
    bool wasPlaying_ = false;

    // hit tables
    std::atomic<HitTable*> table_{nullptr};
    std::atomic<uint64_t> seenVersion_{0};
    mutable std::mutex hitsMutex_;
    std::vector<Hit> hits_;
    std::vector<HitTable*> retired_;
    uint64_t version_ = 0;
    int tableMap_ = -1;

    // configuration (state)
    mutable std::mutex configMutex_;
    std::string host_ = "127.0.0.1";
    int port_ = 9001;
    std::string studio_ = "idm-studio";
    std::atomic<uint64_t> configVersion_{0};
    uint64_t seenConfig_ = 0;

    mutable std::mutex statusMutex_;
    mutable std::deque<std::string> log_;
    mutable std::string lastLine_;
    mutable uint64_t repeats_ = 0;

    // sender thread only
    std::thread sender_;
    std::deque<Item> queue_;
    size_t queuedBytes_ = 0;
    bool memoryFull_ = false;
    bool takeOpen_ = false;
    int64_t takeStart_ = 0, takeNext_ = 0;
    uint32_t takeRate_ = 0;
    double lastData_ = 0.0;
    int fd_ = -1;
    bool connecting_ = false;
    double connectDeadline_ = 0.0, retryAt_ = 0.0;
    std::vector<uint8_t> out_;
    size_t outPos_ = 0;
    idmosc::FrameReader reader_{16u << 20};
    int32_t streamBase_ = 1;
    uint32_t streamCounter_ = 0;
    int32_t streamId_ = 0;
    int32_t streamSeq_ = 0;
    int64_t streamStart_ = 0, streamFrames_ = 0;
    bool streamOpen_ = false;
    std::map<int32_t, Pending> pending_;
    uint64_t garbage_ = 0;
    int reconnects_ = 0;
    std::string key_;
    std::atomic<bool> editRequested_{false}, editSwitch_{false};
    bool editWanted_ = false, editAsked_ = false;
    double editRetryAt_ = 0.0;
    int32_t lastTake_ = 0, editId_ = 0;
    std::string editPath_;
    int64_t editMtime_ = 0;
    double nextEditPoll_ = 0.0;
    std::map<int32_t, std::pair<int64_t, int64_t>> spans_;  // take id -> (start frame, frames)
    std::vector<pid_t> children_;

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(IdmBridge)
};

Plugin* createPlugin() { return new IdmBridge(); }

END_NAMESPACE_DISTRHO
