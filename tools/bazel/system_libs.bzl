"""Repository rules that wire Debian's libraries and protos into the build.

`system_libs` asks pkg-config, when the workspace is loaded, for the compile
and link flags of each library and writes one cc_library per library into
@system_libs. Nothing about flags is written by hand in this tree, so the build
follows whatever versions Debian ships.

`googleapis_protos` exposes the googleapis .proto files that tools/setup
installs from a pinned registry package, together with C++ code generated from
them at build time.
"""

# name -> (pkg-config modules, extra libraries pkg-config does not describe)
_LIBS = {
    "absl": ([
        "absl_status",
        "absl_statusor",
        "absl_strings",
        "absl_str_format",
        "absl_synchronization",
        "absl_time",
        "absl_flags",
        "absl_flags_parse",
        "absl_random_random",
        "absl_hash",
        "absl_flat_hash_map",
        "absl_cleanup",
    ], []),
    "protobuf": (["protobuf"], []),
    # grpc++_reflection ships no .pc file; its library name is all we add.
    "grpcpp": (["grpc++"], ["-lgrpc++_reflection"]),
    "curl": (["libcurl"], []),
    "xml2": (["libxml-2.0"], []),
    "sqlite3": (["sqlite3"], []),
    "rapidjson": (["RapidJSON"], []),
    "gtest_main": (["gmock", "gtest_main"], []),
    # HMAC/SHA for signed requests (enStratus, AWS SigV4) and TLS for wss.
    "openssl": (["openssl"], []),
    # Boost.Asio/Beast (websocket client) are header-only and ship no .pc
    # file; Debian's libboost-dev puts them on the default include path.
    "boost": ([], ["-lpthread"]),
}

def _pkg_config(ctx, flag, modules):
    if not modules:
        return []
    result = ctx.execute(["pkg-config", flag] + modules)
    if result.return_code != 0:
        fail("pkg-config %s %s failed (run tools/setup first): %s" %
             (flag, " ".join(modules), result.stderr))
    return [f for f in result.stdout.strip().split(" ") if f]

def _system_libs_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, (modules, extra) in _LIBS.items():
        includes = []
        defines = []
        for flag in _pkg_config(ctx, "--cflags", modules):
            if flag.startswith("-I"):
                # Bazel only accepts include dirs inside a repository, so the
                # system dir is linked in and exported through `includes`.
                link = "inc_%s_%d" % (name, len(includes))
                ctx.symlink(flag[2:], link)
                includes.append(link)
            elif flag.startswith("-D"):
                defines.append(flag[2:])
        linkopts = _pkg_config(ctx, "--libs", modules) + extra
        build.append("cc_library(")
        build.append("    name = %r," % name)
        build.append("    hdrs = glob(%r, allow_empty = True)," % [i + "/**/*.h" for i in includes])
        build.append("    includes = %r," % includes)
        build.append("    defines = %r," % defines)
        build.append("    linkopts = %r," % linkopts)
        build.append(")")
        build.append("")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(build))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)

# The googleapis files cloudplane imports (directly or through each other).
_GOOGLEAPIS_PROTOS = [
    "google/api/annotations.proto",
    "google/api/client.proto",
    "google/api/field_behavior.proto",
    "google/api/http.proto",
    "google/api/launch_stage.proto",
    "google/api/resource.proto",
    "google/longrunning/operations.proto",
    "google/rpc/code.proto",
    "google/rpc/error_details.proto",
    "google/rpc/status.proto",
]

def _googleapis_impl(ctx):
    workspace = ctx.path(Label("//:WORKSPACE")).dirname
    root = "%s/%s" % (workspace, ctx.attr.path)
    health = "%s/%s" % (workspace, ctx.attr.health_proto)
    for path in [root, health]:
        if not ctx.path(path).exists:
            fail("%s is missing: run tools/setup to install the registry protos" % path)
    for f in _GOOGLEAPIS_PROTOS:
        ctx.symlink(ctx.path(root + "/" + f), f)
    ctx.symlink(ctx.path(health), "grpc/health/v1/health.proto")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", """
load("@cloudplane//tools/bazel:proto.bzl", "cc_grpc_proto")

package(default_visibility = ["//visibility:public"])

filegroup(
    name = "protos",
    srcs = {protos},
)

cc_grpc_proto(
    name = "googleapis_cc",
    srcs = {protos},
    grpc_srcs = ["google/longrunning/operations.proto"],
)

# Only the messages: gRPC serves grpc.health.v1.Health itself. Linked in so
# that server reflection can describe the health service to grpcurl.
cc_grpc_proto(
    name = "health_cc",
    srcs = ["grpc/health/v1/health.proto"],
    alwayslink = True,
)
""".format(protos = repr(_GOOGLEAPIS_PROTOS)))

googleapis_protos = repository_rule(
    implementation = _googleapis_impl,
    attrs = {
        "path": attr.string(mandatory = True),
        "health_proto": attr.string(mandatory = True),
    },
    local = True,
)
