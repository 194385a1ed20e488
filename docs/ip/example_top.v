// example_top: the smallest system around iogate_iommu (Config "default", one translation
// port), written by hand to show how the generated IP is instantiated (docs/ip.md).
//
// Every port of iogate_iommu is connected by name, so a change of the generated port list
// breaks this file (and its lint in tests/ip) instead of going unnoticed. The register page
// and the memory bus are brought out to the top as they are; the one requester is a device
// the integrator wires in (here: brought out too). Unused inputs are tied off where a real
// system would have nothing to drive: see the ID and PASID notes below.
//
// Lint: verilator --lint-only -Wall docs/ip/iogate.vlt docs/ip/example_top.v iogate_default.v
`default_nettype none

module example_top (
    input  wire        clk,
    input  wire        rst,
    // AXI4-Lite subordinate: the IOMMU's 4 KiB register page (64-bit data).
    input  wire [11:0] s_axil_awaddr,
    input  wire [2:0]  s_axil_awprot,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [63:0] s_axil_wdata,
    input  wire [7:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output wire        s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [11:0] s_axil_araddr,
    input  wire [2:0]  s_axil_arprot,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output wire [63:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output wire        s_axil_rvalid,
    input  wire        s_axil_rready,
    // AXI4 manager: the IOMMU's own memory reads and writes (PAS 56, 64-bit data, 4-bit IDs).
    output wire [3:0]  m_axi_awid,
    output wire [55:0] m_axi_awaddr,
    output wire [7:0]  m_axi_awlen,
    output wire [2:0]  m_axi_awsize,
    output wire [1:0]  m_axi_awburst,
    output wire        m_axi_awvalid,
    input  wire        m_axi_awready,
    output wire [63:0] m_axi_wdata,
    output wire [7:0]  m_axi_wstrb,
    output wire        m_axi_wlast,
    output wire        m_axi_wvalid,
    input  wire        m_axi_wready,
    input  wire [3:0]  m_axi_bid,
    input  wire [1:0]  m_axi_bresp,
    input  wire        m_axi_bvalid,
    output wire        m_axi_bready,
    output wire [3:0]  m_axi_arid,
    output wire [55:0] m_axi_araddr,
    output wire [7:0]  m_axi_arlen,
    output wire [2:0]  m_axi_arsize,
    output wire [1:0]  m_axi_arburst,
    output wire        m_axi_arvalid,
    input  wire        m_axi_arready,
    input  wire [3:0]  m_axi_rid,
    input  wire [63:0] m_axi_rdata,
    input  wire [1:0]  m_axi_rresp,
    input  wire        m_axi_rlast,
    input  wire        m_axi_rvalid,
    output wire        m_axi_rready,
    // The device: an Untranslated request (device_id, IOVA, access) with a tag, answered
    // with the same tag and a fault/CAUSE or the physical page.
    input  wire        dev_req_valid,
    output wire        dev_req_ready,
    input  wire [7:0]  dev_req_tag,
    input  wire [23:0] dev_req_device_id,
    input  wire [63:0] dev_req_iova,
    input  wire        dev_req_write,
    output wire        dev_resp_valid,
    input  wire        dev_resp_ready,
    output wire [7:0]  dev_resp_tag,
    output wire        dev_resp_fault,
    output wire [11:0] dev_resp_cause,
    output wire [55:0] dev_resp_pa_page,   // ppn << 12: the IOVA's page offset is the device's
    output wire [2:0]  dev_resp_rwx,
    // Wired interrupts: the command-queue and fault-queue lines (icvec.civ/fiv select them).
    output wire [15:0] irq
);

    wire [43:0] resp_ppn;
    wire        resp_r, resp_w, resp_x;
    // Outputs the example has no consumer for: Svpbmt type (default Config has no Svpbmt,
    // it reads 0) and the hit statistic. Kept as named wires so every port is connected.
    wire [1:0]  resp_pbmt_unused;
    wire        resp_hit_unused;

    iogate_iommu u_iommu (
        .clk(clk),
        .rst(rst),
        .mmio_awaddr(s_axil_awaddr),   .mmio_awprot(s_axil_awprot),
        .mmio_awvalid(s_axil_awvalid), .mmio_awready(s_axil_awready),
        .mmio_wdata(s_axil_wdata),     .mmio_wstrb(s_axil_wstrb),
        .mmio_wvalid(s_axil_wvalid),   .mmio_wready(s_axil_wready),
        .mmio_bresp(s_axil_bresp),     .mmio_bvalid(s_axil_bvalid),
        .mmio_bready(s_axil_bready),
        .mmio_araddr(s_axil_araddr),   .mmio_arprot(s_axil_arprot),
        .mmio_arvalid(s_axil_arvalid), .mmio_arready(s_axil_arready),
        .mmio_rdata(s_axil_rdata),     .mmio_rresp(s_axil_rresp),
        .mmio_rvalid(s_axil_rvalid),   .mmio_rready(s_axil_rready),
        .mem_awid(m_axi_awid),         .mem_awaddr(m_axi_awaddr),
        .mem_awlen(m_axi_awlen),       .mem_awsize(m_axi_awsize),
        .mem_awburst(m_axi_awburst),   .mem_awvalid(m_axi_awvalid),
        .mem_awready(m_axi_awready),
        .mem_wdata(m_axi_wdata),       .mem_wstrb(m_axi_wstrb),
        .mem_wlast(m_axi_wlast),       .mem_wvalid(m_axi_wvalid),
        .mem_wready(m_axi_wready),
        .mem_bid(m_axi_bid),           .mem_bresp(m_axi_bresp),
        .mem_bvalid(m_axi_bvalid),     .mem_bready(m_axi_bready),
        .mem_arid(m_axi_arid),         .mem_araddr(m_axi_araddr),
        .mem_arlen(m_axi_arlen),       .mem_arsize(m_axi_arsize),
        .mem_arburst(m_axi_arburst),   .mem_arvalid(m_axi_arvalid),
        .mem_arready(m_axi_arready),
        .mem_rid(m_axi_rid),           .mem_rdata(m_axi_rdata),
        .mem_rresp(m_axi_rresp),       .mem_rlast(m_axi_rlast),
        .mem_rvalid(m_axi_rvalid),     .mem_rready(m_axi_rready),
        .tr0_req_valid(dev_req_valid), .tr0_req_ready(dev_req_ready),
        .tr0_req_payload_tag(dev_req_tag),
        .tr0_req_payload_device_id(dev_req_device_id),
        .tr0_req_payload_iova(dev_req_iova),
        // access: 0 read, 1 write; this device never asks for execute (2).
        .tr0_req_payload_access({1'b0, dev_req_write}),
        .tr0_resp_valid(dev_resp_valid), .tr0_resp_ready(dev_resp_ready),
        .tr0_resp_payload_tag(dev_resp_tag),
        .tr0_resp_payload_fault(dev_resp_fault),
        .tr0_resp_payload_cause(dev_resp_cause),
        .tr0_resp_payload_ppn(resp_ppn),
        .tr0_resp_payload_r(resp_r), .tr0_resp_payload_w(resp_w), .tr0_resp_payload_x(resp_x),
        .tr0_resp_payload_pbmt(resp_pbmt_unused),
        .tr0_resp_payload_hit(resp_hit_unused),
        .wsi(irq)
    );

    assign dev_resp_pa_page = {resp_ppn, 12'h000};
    assign dev_resp_rwx = {resp_x, resp_w, resp_r};

endmodule

`default_nettype wire
