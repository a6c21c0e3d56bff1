"""Build-time code generation from .proto files with the system protoc.

Debian's protoc and its gRPC plugins are used as they are; nothing generated is
ever committed. The .proto import root is the package that calls the macro, so
`//proto` holds `cloudplane/v1/*.proto` and they import each other as
`cloudplane/v1/x.proto`, exactly as buf and grpcurl see them.
"""

_PROTOC = "/usr/bin/protoc"
_GOOGLEAPIS = "@googleapis//:protos"

def _import_root():
    repo = native.repository_name()
    parts = []
    if repo != "@":
        parts.append("external/" + repo[1:])
    if native.package_name():
        parts.append(native.package_name())
    return "/".join(parts) if parts else "."

def _protoc_cmd(out_flags, srcs, with_googleapis):
    root = _import_root()
    flags = ["-I" + root]
    if with_googleapis:
        flags.append("-Iexternal/googleapis")
    return " ".join([_PROTOC] + flags + out_flags + ["%s/%s" % (root, s) for s in srcs])

def _is_googleapis():
    return native.repository_name() == "@googleapis"

def cc_grpc_proto(name, srcs, grpc_srcs = [], deps = [], **kwargs):
    """C++ messages for `srcs` and gRPC stubs for `grpc_srcs` (a subset).

    Makes a cc_library `name` whose headers are included as "<path>.pb.h".
    """
    root = _import_root()
    out_root = "$(GENDIR)" if root == "." else "$(GENDIR)/" + root
    external = not _is_googleapis()
    proto_tools = [_GOOGLEAPIS] if external else []
    msg_outs = [s[:-len(".proto")] + ext for s in srcs for ext in [".pb.h", ".pb.cc"]]
    native.genrule(
        name = name + "_msgs",
        srcs = srcs + proto_tools,
        outs = msg_outs,
        cmd = _protoc_cmd(["--cpp_out=" + out_root], srcs, external),
    )
    outs = list(msg_outs)
    if grpc_srcs:
        grpc_outs = [s[:-len(".proto")] + ext for s in grpc_srcs for ext in [".grpc.pb.h", ".grpc.pb.cc"]]
        native.genrule(
            name = name + "_grpc",
            srcs = srcs + proto_tools,
            outs = grpc_outs,
            cmd = _protoc_cmd([
                "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin",
                "--grpc_out=" + out_root,
            ], grpc_srcs, external),
        )
        outs += grpc_outs
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        deps = deps + ["@system_libs//:grpcpp", "@system_libs//:protobuf"],
        **kwargs
    )

def py_grpc_proto(name, srcs, grpc_srcs = [], **kwargs):
    """Python messages (`*_pb2.py`) and gRPC stubs (`*_pb2_grpc.py`).

    The googleapis modules come from the googleapis-common-protos package at run
    time, so only this package's own files are generated.
    """
    root = _import_root()
    out_root = "$(GENDIR)" if root == "." else "$(GENDIR)/" + root
    outs = [s[:-len(".proto")] + "_pb2.py" for s in srcs]
    outs += [s[:-len(".proto")] + "_pb2_grpc.py" for s in grpc_srcs]
    native.genrule(
        name = name,
        srcs = srcs + [_GOOGLEAPIS],
        outs = outs,
        cmd = " && ".join([
            _protoc_cmd(["--python_out=" + out_root], srcs, True),
            _protoc_cmd([
                "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                "--grpc_python_out=" + out_root,
            ], grpc_srcs, True),
        ]),
        **kwargs
    )
