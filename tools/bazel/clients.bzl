"""Build-time generation of the Go, Java and Node.js/TypeScript clients.

Each language's stubs come from the system protoc run with that language's
plugin: Debian's /usr/bin/grpc_java_plugin, protoc-gen-go and
protoc-gen-go-grpc that tools/setup_clients `go install`s into .deps/bin, and
ts-proto that it installs from npm into .deps/clients/node. Nothing generated
is committed (C++ and Python come from tools/bazel/proto.bzl).

The number and names of the generated files depend on the plugin (one Java
file per message, one TypeScript file per imported .proto), so the output is
one directory (a tree artifact) rather than a list of files.

Plugins under .deps/ are outside the Bazel workspace (.bazelignore), so they
cannot be inputs. The files that pin their versions (go.mod,
package-lock.json, pom.xml) are inputs instead: changing a pin regenerates.
The workspace's absolute path is read back from one of those inputs.
"""

_PROTOC = "/usr/bin/protoc"

# Where the .proto files of each repository are imported from.
_IMPORT_ROOTS = ["proto/", "external/googleapis/"]

def _import_path(f):
    for root in _IMPORT_ROOTS:
        if f.path.startswith(root):
            return f.path[len(root):]
    fail("%s is under none of the import roots %s" % (f.path, _IMPORT_ROOTS))

def _wanted(path, generate):
    for g in generate:
        if path == g or (g.endswith("/") and path.startswith(g)):
            return True
    return False

def _protoc_tree_impl(ctx):
    out = ctx.actions.declare_directory(ctx.attr.out)
    protos = ctx.files.srcs + ctx.files.imports
    to_generate = sorted([_import_path(f) for f in protos if _wanted(_import_path(f), ctx.attr.generate)])
    if not to_generate:
        fail("no .proto file matches %s" % ctx.attr.generate)
    anchor = ctx.files.pins[0]
    plugin_flags = []
    checks = []
    for name, path in ctx.attr.plugins.items():
        resolved = path if path.startswith("/") else "$ws/" + path
        plugin_flags.append("--plugin=protoc-gen-%s=%s" % (name, resolved))
        checks.append(
            '[ -x "{p}" ] || {{ echo "{p} is missing: run tools/setup" >&2; exit 1; }}'.format(p = resolved),
        )
    out_flags = [f.replace("{out}", out.path) for f in ctx.attr.flags]
    command = "\n".join([
        "set -euo pipefail",
        # The pin file is a symlink into the source tree; its real path minus
        # its workspace-relative path is the workspace.
        'real=$(readlink -f "%s")' % anchor.path,
        'ws="${real%%/%s}"' % anchor.short_path,
    ] + checks + [
        " ".join([_PROTOC] + ["-I" + r.rstrip("/") for r in _IMPORT_ROOTS] + plugin_flags +
                 out_flags + to_generate),
    ] + ([ctx.attr.post.replace("{out}", out.path)] if ctx.attr.post else []))
    ctx.actions.run_shell(
        inputs = protos + ctx.files.pins,
        outputs = [out],
        command = command,
        mnemonic = "ProtocClient",
        progress_message = "Generating %s client %s" % (ctx.attr.language, out.short_path),
        # node must be on PATH for ts-proto (`#!/usr/bin/env node`).
        use_default_shell_env = True,
    )
    return [DefaultInfo(files = depset([out]))]

_protoc_tree = rule(
    implementation = _protoc_tree_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".proto"], mandatory = True),
        "imports": attr.label_list(allow_files = [".proto"]),
        "generate": attr.string_list(mandatory = True),
        "plugins": attr.string_dict(),
        "flags": attr.string_list(mandatory = True),
        "pins": attr.label_list(allow_files = True, mandatory = True),
        "post": attr.string(),
        "out": attr.string(mandatory = True),
        "language": attr.string(mandatory = True),
    },
)

_API = "//proto:api_protos"
_GOOGLEAPIS = "@googleapis//:protos"

def go_grpc_client(name, module, go_version, pins):
    """Go messages and gRPC stubs of cloudplane/v1 as a Go module `module`.

    The output directory `name` holds go.mod and cloudplane/v1/*.pb.go. The
    googleapis packages it imports (genproto, longrunningpb) are ordinary
    pinned modules of the consumer's go.mod.
    """
    _protoc_tree(
        name = name,
        srcs = [_API],
        imports = [_GOOGLEAPIS],
        generate = ["cloudplane/v1/"],
        plugins = {
            "go": ".deps/bin/protoc-gen-go",
            "go-grpc": ".deps/bin/protoc-gen-go-grpc",
        },
        flags = [
            "--go_out={out}",
            "--go_opt=module=" + module,
            "--go-grpc_out={out}",
            "--go-grpc_opt=module=" + module,
        ],
        pins = pins,
        post = "printf 'module %s\\n\\ngo %s\\n' > {out}/go.mod" % (module, go_version),
        out = name,
        language = "Go",
    )

def java_grpc_client(name, pins):
    """Java messages and gRPC stubs of cloudplane/v1, as a source directory.

    com.google.longrunning/rpc/api come from the proto-google-common-protos jar.
    """
    _protoc_tree(
        name = name,
        srcs = [_API],
        imports = [_GOOGLEAPIS],
        generate = ["cloudplane/v1/"],
        plugins = {"grpc-java": "/usr/bin/grpc_java_plugin"},
        flags = ["--java_out={out}", "--grpc-java_out={out}"],
        pins = pins,
        out = name,
        language = "Java",
    )

def ts_grpc_client(name, pins, options):
    """TypeScript messages and @grpc/grpc-js clients (ts-proto).

    JavaScript has no package of googleapis messages that matches these, so
    the googleapis files cloudplane uses, and google/rpc/error_details.proto
    for reading error details, are generated too.
    """
    _protoc_tree(
        name = name,
        srcs = [_API],
        imports = [_GOOGLEAPIS],
        generate = [
            "cloudplane/v1/",
            "google/longrunning/operations.proto",
            "google/rpc/error_details.proto",
            "google/rpc/status.proto",
        ],
        plugins = {"ts_proto": ".deps/clients/node/node_modules/.bin/protoc-gen-ts_proto"},
        flags = ["--ts_proto_out={out}", "--ts_proto_opt=" + ",".join(options)],
        pins = pins,
        out = name,
        language = "TypeScript",
    )
