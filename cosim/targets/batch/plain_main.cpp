// The batch harness under a plain Verilator C++ main: no VPI, no cocotb, no Python.
//
// It replays a trace written by cosim/batch/trace.py exactly as cosim/batch/cocotb_batch.py
// does (register writes and polled reads over AXI4-Lite, RAM doublewords through the host
// write port, then batches of requests through the player), and writes the recorder's
// responses in arrival order, one hex payload per line, for cosim/batch/check.py to verify.
//
//   plain_main <trace> <responses> <timing.json>
//
// The timing file holds the wall-clock seconds of the request phase (load + run + read
// back), the figure the cocotb batch runner measures too.
#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

// The harness's shape, given by cosim/batch/plain.py from cosim/batch/harness.py: LANES
// requests per row, DEPTH per batch, REQ_BITS per request (hdl.port.request_layout without
// the tag) and RESP_BITS per response (hdl.port.response_layout).
#if !defined(LANES) || !defined(DEPTH) || !defined(REQ_BITS) || !defined(RESP_BITS)
#error "build with -DLANES=... -DDEPTH=... -DREQ_BITS=... -DRESP_BITS=... (cosim/batch/plain.py)"
#endif
static const int POLLS = 10000;   // as cocotb_batch.POLLS

static std::unique_ptr<Vtop> top;
static uint64_t cycle = 0;

// Settle the inputs with the clock low, let `sample` look at the outputs, then the edge.
template <typename F> static void tick(F sample) {
    top->clk = 0;
    top->eval();
    sample();
    top->clk = 1;
    top->eval();
    cycle++;
}
static void tick() { tick([] {}); }

static void set_bits(uint32_t *words, int lsb, int width, uint64_t value) {
    for (int i = 0; i < width; i++) {
        int b = lsb + i;
        uint32_t bit = (value >> i) & 1;
        words[b / 32] = (words[b / 32] & ~(1u << (b % 32))) | (bit << (b % 32));
    }
}

static uint64_t get_bits(const uint32_t *words, int lsb, int width) {
    uint64_t v = 0;
    for (int i = 0; i < width; i++) {
        int b = lsb + i;
        v |= (uint64_t)((words[b / 32] >> (b % 32)) & 1) << i;
    }
    return v;
}

static void mmio_write(uint32_t offset, int size, uint64_t value) {
    int lane = offset & 7;
    uint64_t mask = size == 8 ? ~0ull : ((1ull << (8 * size)) - 1);
    top->mmio___05Fawaddr = offset;
    top->mmio___05Fawprot = 0;
    top->mmio___05Fwdata = (value & mask) << (8 * lane);
    top->mmio___05Fwstrb = ((1u << size) - 1) << lane;
    top->mmio___05Fawvalid = 1;
    top->mmio___05Fwvalid = 1;
    top->mmio___05Fbready = 1;
    bool b = false;
    while (!b) {
        bool aw = false, w = false;
        tick([&] {
            aw = top->mmio___05Fawvalid && top->mmio___05Fawready;
            w = top->mmio___05Fwvalid && top->mmio___05Fwready;
            b = top->mmio___05Fbvalid;
        });
        if (aw) top->mmio___05Fawvalid = 0;
        if (w) top->mmio___05Fwvalid = 0;
    }
    top->mmio___05Fbready = 0;
}

static uint64_t mmio_read(uint32_t offset, int size) {
    int lane = offset & 7;
    top->mmio___05Faraddr = offset;
    top->mmio___05Farprot = 0;
    top->mmio___05Farvalid = 1;
    top->mmio___05Frready = 1;
    bool r = false;
    uint64_t data = 0;
    while (!r) {
        bool ar = false;
        tick([&] {
            ar = top->mmio___05Farvalid && top->mmio___05Farready;
            r = top->mmio___05Frvalid;
            data = top->mmio___05Frdata;
        });
        if (ar) top->mmio___05Farvalid = 0;
    }
    top->mmio___05Frready = 0;
    uint64_t v = data >> (8 * lane);
    return size == 8 ? v : v & ((1ull << (8 * size)) - 1);
}

static void mem_write(uint64_t address, uint64_t value) {
    // write_request_layout(32): addr[31:0], data[95:32], strb[103:96].
    uint32_t *p = top->host_write___05Freq___05Fpayload.data();
    std::memset(p, 0, 4 * 4);
    set_bits(p, 0, 32, address);
    set_bits(p, 32, 64, value);
    set_bits(p, 96, 8, 0xFF);
    top->host_write___05Freq___05Fvalid = 1;
    bool taken = false;
    while (!taken) tick([&] { taken = top->host_write___05Freq___05Fready; });
    top->host_write___05Freq___05Fvalid = 0;
    bool answered = false;
    while (!answered) tick([&] { answered = top->host_write___05Fresp___05Fvalid; });
}

struct Request { uint64_t did, iova, access; };

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s <trace> <responses> <timing.json>\n", argv[0]);
        return 2;
    }
    auto ctx = std::make_unique<VerilatedContext>();
    top = std::make_unique<Vtop>(ctx.get());
    top->host_write___05Fresp___05Fready = 1;
    top->host_read___05Fresp___05Fready = 1;
    top->rst = 1;
    for (int i = 0; i < 5; i++) tick();
    top->rst = 0;
    tick();

    std::ifstream in(argv[1]);
    std::string line;
    std::getline(in, line);
    if (line != "iogate-batch-trace 1") {
        std::fprintf(stderr, "%s is not a batch trace\n", argv[1]);
        return 2;
    }
    std::vector<Request> requests;
    int setup_mismatches = 0;
    while (std::getline(in, line)) {
        std::istringstream s(line);
        std::string kind;
        uint64_t a = 0, b = 0, c = 0;
        s >> kind >> std::hex >> a >> b >> c;
        if (kind == "W") {
            mmio_write(a, b, c);
        } else if (kind == "R") {
            uint64_t v = 0;
            int i = 0;
            for (; i < POLLS; i++)
                if ((v = mmio_read(a, b)) == c) break;
            if (i == POLLS) {
                std::fprintf(stderr, "mmio read %#05llx/%llu: rtl %#llx model %#llx\n",
                             (unsigned long long)a, (unsigned long long)b,
                             (unsigned long long)v, (unsigned long long)c);
                setup_mismatches++;
            }
        } else if (kind == "M") {
            mem_write(a, b);
        } else if (kind == "Q") {
            requests.push_back({a, b, c});
        }
    }

    std::FILE *out = std::fopen(argv[2], "w");
    auto t0 = std::chrono::steady_clock::now();
    uint64_t run_cycles = 0;
    for (size_t first = 0; first < requests.size(); first += DEPTH) {
        size_t n = std::min<size_t>(DEPTH, requests.size() - first);
        for (size_t row = 0; row < n; row += LANES) {
            uint32_t *p = top->load_data.data();
            std::memset(p, 0, sizeof(uint32_t) * ((LANES * REQ_BITS + 31) / 32));
            for (size_t j = 0; j < LANES && row + j < n; j++) {
                const Request &r = requests[first + row + j];
                int lsb = j * REQ_BITS;
                set_bits(p, lsb, 24, r.did);
                set_bits(p, lsb + 24, 64, r.iova);
                set_bits(p, lsb + 88, 2, r.access);
            }
            top->load_addr = row / LANES;
            top->load_en = 1;
            tick();
        }
        top->load_en = 0;
        top->count = n;
        top->start = 1;
        tick();
        top->start = 0;
        while (!top->done) tick();
        run_cycles += top->cycles;
        for (size_t row = 0; row < n; row += LANES) {
            top->read_addr = row / LANES;
            tick();
            const uint32_t *p = top->read_data.data();
            for (size_t j = 0; j < LANES && row + j < n; j++) {
                int lsb = j * RESP_BITS;
                uint64_t lo = get_bits(p, lsb, 64);
                uint64_t hi = get_bits(p, lsb + 64, RESP_BITS - 64);
                if (hi)
                    std::fprintf(out, "%llx%016llx\n", (unsigned long long)hi,
                                 (unsigned long long)lo);
                else
                    std::fprintf(out, "%llx\n", (unsigned long long)lo);
            }
        }
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fclose(out);
    std::FILE *timing = std::fopen(argv[3], "w");
    std::fprintf(timing, "{\"seconds\": %.9f, \"cycles\": %llu, \"setup_mismatches\": %d}\n",
                 seconds, (unsigned long long)run_cycles, setup_mismatches);
    std::fclose(timing);
    top->final();
    top.reset();    // before its context goes: a model outliving it hangs at exit
    return setup_mismatches ? 1 : 0;
}
