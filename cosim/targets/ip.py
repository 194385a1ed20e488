"""The IOMMU as Verilog IP: ``generate_ip(config, out_dir, name)``.

Writes ``iogate_<name>.v`` (module ``iogate_iommu``, plain Verilog-2005, no Amaranth needed
to read or simulate it), ``iogate_<name>.ports.json`` (the port list a tool can read, with
the Config and the ``capabilities`` value it advertises, spec "IOMMU capabilities
(capabilities)") and ``iogate_<name>.ports.md`` (the same list as a Markdown table).

Port naming rule (stable: tests/ip/golden holds the list for ``default`` and ``full``):
the top-level ports are the members of :class:`iogate.hdl.iommu.Iommu`'s signature,
flattened. A member path is joined with ``_``; an array index is fused to its member's
name (``tr[0]`` is ``tr0``); a stream payload that is a struct is split into one port per
field (``tr0_req_payload_iova``), so no tool needs to know the packing. Plus ``clk`` and
``rst`` (synchronous, active high) of the single clock domain. The AXI names are the
AMBA ones in lower case behind the ``mmio_``/``mem_`` prefix, which is what
cocotbext-axi's and most vendors' bus inference expect.

This lives with the simulator glue (:mod:`iogate.cosim.targets.sim`) because the
Verilog goes through the same Yosys ``proc`` pass that makes it simulate on Verilator and
Icarus (see that module's docstring); the only difference is plain Verilog instead of
SystemVerilog output, so the file is Verilog-2005 and named ``.v``.
"""

import dataclasses
import json
import pathlib

from amaranth.hdl import Module, Shape, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.iommu import Iommu

from iogate.cosim.targets.sim import _INTERNAL_ATTRS

__all__ = ["IpTop", "MODULE", "port_list", "generate_ip", "verilog_text", "markdown_table"]

#: The Verilog module name of the IP top.
MODULE = "iogate_iommu"

# What each leaf signal carries, keyed by (group kind, leaf name); AMBA AXI4 / AXI4-Lite
# channel semantics for the buses, the iogate.hdl.port layouts for the translation ports.
_AXI = {
    "awid": "write address ID", "awaddr": "write address", "awlen": "burst length - 1",
    "awsize": "log2 bytes per beat", "awburst": "burst type (INCR)",
    "awprot": "write protection type", "awvalid": "write address valid",
    "awready": "write address ready", "wdata": "write data", "wstrb": "write byte strobes",
    "wlast": "last write beat", "wvalid": "write data valid", "wready": "write data ready",
    "bid": "write response ID", "bresp": "write response (OKAY/SLVERR/DECERR)",
    "bvalid": "write response valid", "bready": "write response ready",
    "arid": "read address ID", "araddr": "read address", "arlen": "burst length - 1",
    "arsize": "log2 bytes per beat", "arburst": "burst type (INCR)",
    "arprot": "read protection type", "arvalid": "read address valid",
    "arready": "read address ready", "rid": "read data ID", "rdata": "read data",
    "rresp": "read response", "rlast": "last read beat", "rvalid": "read data valid",
    "rready": "read data ready",
}
_TR = {
    "req_valid": "request valid", "req_ready": "request accepted",
    "req_payload_tag": "request tag, echoed in the response",
    "req_payload_device_id": "device_id of the requester",
    "req_payload_iova": "IOVA to translate",
    "req_payload_access": "access: 0 read, 1 write, 2 execute",
    "req_payload_pv": "a process_id comes with the request (PASID valid)",
    "req_payload_pid": "process_id (PASID)",
    "req_payload_priv": "supervisor privilege requested (with pv)",
    "resp_valid": "response valid", "resp_ready": "response accepted",
    "resp_payload_tag": "tag of the request answered",
    "resp_payload_fault": "the request faulted (cause holds the CAUSE)",
    "resp_payload_cause": "fault CAUSE (spec \"Fault/Event-Queue (FQ)\")",
    "resp_payload_ppn": "4 KiB physical page: PA = ppn << 12 | iova[11:0]",
    "resp_payload_r": "read permitted", "resp_payload_w": "write permitted",
    "resp_payload_x": "execute permitted", "resp_payload_pbmt": "Svpbmt memory type",
    "resp_payload_hit": "answered without a walk (IOTLB or identity; statistics only)",
}
_GROUPS = {
    "clock": "clock and synchronous active-high reset",
    "mmio": "AXI4-Lite subordinate: the register page",
    "mem": "AXI4 manager: device contexts, page tables, commands, fault records",
    "tr": "translation port (requests in, responses out)",
    "wsi": "wired interrupt lines",
}


def _leaves(path, flow, value):
    """(name, flow, width, path) of each flat port of one signature member."""
    parts = []
    for p in path:
        if isinstance(p, int):
            parts[-1] += str(p)
        else:
            parts.append(p)
    name = "_".join(parts)
    layout = value.shape() if isinstance(value, data.View) else None
    if isinstance(layout, data.StructLayout):
        for field_name, field in layout:
            yield (f"{name}_{field_name}", flow, Shape.cast(field.shape).width,
                   (path, field_name))
    else:
        yield name, flow, len(Value.cast(value)), (path, None)


def _describe(name):
    group = name.split("_", 1)[0]
    rest = name[len(group) + 1:]
    if group in ("mmio", "mem"):
        return group, _AXI[rest]
    if group.startswith("tr"):
        return group, _TR[rest]
    if group == "wsi":
        return group, "wired interrupt lines: ipsr.cip on icvec.civ, ipsr.fip on icvec.fiv"
    return "clock", {"clk": "clock (rising edge)", "rst": "synchronous reset, active high"}[name]


class IpTop(wiring.Component):
    """:class:`iogate.hdl.iommu.Iommu` with a flat signature (see the module docstring's
    naming rule), so the Verilog ports are single, named, fixed-width wires."""

    def __init__(self, config):
        self.iommu = Iommu(config)
        self._map = []
        members = {}
        for path, member, value in self.iommu.signature.flatten(self.iommu):
            flow = member.flow
            for name, leaf_flow, width, where in _leaves(path, flow, value):
                members[name] = (In if leaf_flow == In else Out)(width)
                self._map.append((name, leaf_flow, where))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.iommu = self.iommu
        for name, flow, (path, field_name) in self._map:
            inner = self.iommu
            for p in path:
                inner = inner[p] if isinstance(p, int) else getattr(inner, p)
            if field_name is not None:
                inner = inner[field_name]
            outer = getattr(self, name)
            inner_value = Value.cast(inner)
            if flow == In:
                m.d.comb += inner_value.eq(outer)
            else:
                m.d.comb += outer.eq(inner_value)
        return m


def port_list(config):
    """The ports of the IP top built with ``config``, in Verilog order: dicts of ``name``,
    ``direction`` (``input``/``output``), ``width``, ``group`` and ``description``."""
    top = IpTop(config)
    # Only the signature is wanted here: nothing is elaborated, on purpose.
    top._MustUse__silence = top.iommu._MustUse__silence = True
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for name, member in top.signature.members.items():
        ports.append({"name": name, "direction": "input" if member.flow == In else "output",
                      "width": Shape.cast(member.shape).width})
    for port in ports:
        port["group"], port["description"] = _describe(port["name"])
    return ports


def verilog_text(config):
    """Deterministic Verilog-2005 text of :class:`IpTop` as module :data:`MODULE`."""
    from amaranth._toolchain.yosys import find_yosys
    from amaranth.back import rtlil
    text = rtlil.convert(IpTop(config), name=MODULE, emit_src=False)
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = [f"read_rtlil <<rtlil\n{text}\nrtlil", "proc",
              # flatten: one module, so the file adds one name to a design, not twenty.
              "flatten", "opt_clean", "memory_collect",
              f"attrmap {_INTERNAL_ATTRS}", f"attrmap -modattr {_INTERNAL_ATTRS}",
              # -noattr: the (* ... *) attributes Yosys keeps mean nothing to other tools.
              "write_verilog -noattr"]
    return yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)


def description(config, name):
    """The JSON description: ``module``, ``config`` (name and fields), ``capabilities``
    (the spec register's value, from :attr:`Config.capabilities`) and ``ports``."""
    return {
        "module": MODULE,
        "config": {"name": name, **dataclasses.asdict(config)},
        "capabilities": config.capabilities,
        "capabilities_hex": f"{config.capabilities:#018x}",
        "groups": _GROUPS,
        "ports": port_list(config),
    }


def markdown_table(desc):
    """The ports of ``desc`` (see :func:`description`) as a Markdown table."""
    lines = [f"Ports of `{desc['module']}` for Config `{desc['config']['name']}` "
             f"(capabilities `{desc['capabilities_hex']}`):", "",
             "| Port | Direction | Width | Group | Description |",
             "|---|---|---:|---|---|"]
    for p in desc["ports"]:
        lines.append(f"| `{p['name']}` | {p['direction']} | {p['width']} | {p['group']} | "
                     f"{p['description']} |")
    return "\n".join(lines) + "\n"


def generate_ip(config, out_dir, name="default"):
    """Write ``iogate_<name>.v``, ``iogate_<name>.ports.json`` and
    ``iogate_<name>.ports.md`` for ``config`` into ``out_dir`` (created if missing).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"iogate_{name}"
    desc = description(config, name)
    v = out / f"{stem}.v"
    v.write_text(f"// {MODULE}: the iogate RISC-V IOMMU, Config {name!r}, generated by "
                 f"`iogate generate --verilog --config {name}`; do not edit.\n"
                 f"// Ports: {stem}.ports.md / {stem}.ports.json. capabilities = "
                 f"{desc['capabilities_hex']}.\n" + verilog_text(config))
    js = out / f"{stem}.ports.json"
    js.write_text(json.dumps(desc, indent=2) + "\n")
    md = out / f"{stem}.ports.md"
    md.write_text(markdown_table(desc))
    return [v, js, md]
