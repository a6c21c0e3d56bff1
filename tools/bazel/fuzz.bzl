"""Fuzz harnesses: one macro, three targets.

    cc_fuzz_test(
        name = "xml_fuzz",
        srcs = ["xml_fuzz.cc"],
        deps = [":xml"],
        seeds = glob(["testdata/fuzz/xml/*"]),
        dict = "//base/fuzzing:xml.dict",
    )

gives
  - `xml_fuzz`: a cc_test that runs the harness once over every seed with the
    ordinary compiler (base/fuzzing/corpus_driver.cc), so `bazel test //...`
    replays the corpus as a regression test;
  - `xml_fuzz_fuzzer`: the libFuzzer binary, tagged `manual` and `fuzz` so the
    ordinary build never links it; tools/fuzz builds it with --config=fuzz
    (clang, libFuzzer, ASan and UBSan);
  - `xml_fuzz_fuzzer.seeds`: the list of seed files and the dictionary, by
    exec path, from which tools/fuzz fills the fuzzer's working corpus.
"""

def cc_fuzz_test(name, srcs, deps = [], seeds = [], dict = None, size = "small"):
    native.cc_test(
        name = name,
        size = size,
        srcs = srcs,
        deps = deps + ["//base/fuzzing:corpus_driver"],
        data = seeds,
        args = ["$(locations %s)" % s for s in seeds],
    )
    native.cc_binary(
        name = name + "_fuzzer",
        srcs = srcs,
        deps = deps,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual", "fuzz"],
        testonly = True,
    )
    native.genrule(
        name = name + "_seeds",
        srcs = seeds + ([dict] if dict else []),
        outs = [name + "_fuzzer.seeds"],
        cmd = "for f in %s; do echo \"$$f\"; done > $@%s" % (
            " ".join(["$(execpaths %s)" % s for s in seeds]),
            "; echo \"dict=$(execpath %s)\" >> $@" % dict if dict else "",
        ),
        tags = ["fuzz"],
    )
