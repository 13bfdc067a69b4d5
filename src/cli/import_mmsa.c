/* sdumc import-mmsa FILE.pkl --out DIR [--label-range LO,HI] [--sim zeros|none]: an MMSA feature
 * pickle to the dataset layout (data/mmsa.h), read without running anything from the file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "data/mmsa.h"

static void print_summary(const char *out, const sd_mmsa_report *r, const sd_mmsa_options *o) {
    printf("%s: %lld utterances (train %lld, valid %lld, test %lld), labels in [%g, %g]\n", out,
           (long long)(r->n[0] + r->n[1] + r->n[2]), (long long)r->n[0], (long long)r->n[1], (long long)r->n[2],
           o->label_lo, o->label_hi);
    for (int m = 0; m < 3; m++) {
        const char *how = !r->lengths_given[m] ? "frames that are not all zero"
                          : m == SD_MOD_TEXT    ? "text_bert attention mask"
                                                : m == SD_MOD_AUDIO ? "audio_lengths" : "vision_lengths";
        printf("  %-6s dim %d, %lld of %lld padded frames kept (by %s); %lld -inf/+inf/NaN value%s set to 0",
               sd_modality_name(m), r->dim[m], (long long)r->frames_kept[m], (long long)r->frames_padded[m], how,
               (long long)r->nonfinite[m], r->nonfinite[m] == 1 ? "" : "s");
        if (r->clamped[m]) printf("; %lld lengths beyond the padded frames clamped", (long long)r->clamped[m]);
        if (r->empty[m]) printf("; %lld utterances without frames got one zero frame", (long long)r->empty[m]);
        printf("\n");
    }
    if (o->sim == SD_MMSA_SIM_ZEROS)
        printf("  text_sim: one zero frame per utterance, a LOWER BOUND for the text-missing flow "
               "(docs/DATASET.md, \"Simulated text\")\n");
    else
        printf("  text_sim: not written (complete flow only; training needs simulated text: docs/DATASET.md, "
               "\"Simulated text\", or --sim zeros for the lower bound)\n");
}

int cli_import_mmsa(int argc, char **argv) {
    const char *synopsis = "sdumc import-mmsa FILE.pkl --out DIR [--label-range LO,HI] [--sim zeros|none]";
    if (argc < 2 || !strncmp(argv[1], "-", 1)) {
        int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fprintf(help ? stdout : stderr,
                "usage: %s\nWrites the dataset layout (docs/DATASET.md) from an MMSA feature pickle (aligned_50.pkl,\n"
                "unaligned_50.pkl: CMU-MOSI, CMU-MOSEI, CH-SIMS). Nothing in the file is executed.\n"
                "  --out DIR            the new dataset folder (must not exist or be empty)\n"
                "  --label-range LO,HI  the labels' range, kept in DIR/dataset.json (-3,3; CH-SIMS: -1,1)\n"
                "  --sim zeros|none     simulated text: one zero frame per utterance (a lower bound), or none (none)\n",
                synopsis);
        return help ? 0 : 2;
    }
    const char *pkl = argv[1], *out = NULL, *range = NULL;
    int sim = 1;
    arg_spec specs[] = {
        {"out", ARG_STRING, &out, 0, 0, NULL, "the new dataset folder", 0, 0},
        {"label-range", ARG_STRING, &range, 0, 0, NULL, "LO,HI: the labels' range (-3,3; CH-SIMS -1,1)", 0, 0},
        {"sim", ARG_CHOICE, &sim, 0, 0, "zeros|none", "simulated text to write (none)", 0, 0},
    };
    int code;
    if (!cli_parse("import-mmsa", synopsis, "An MMSA feature pickle to the dataset layout.", specs,
                   (int)(sizeof specs / sizeof specs[0]), argc - 1, argv + 1, &code))
        return code;
    if (!out) {
        fprintf(stderr, "sdumc import-mmsa: --out DIR is required\n");
        return 2;
    }
    sd_mmsa_options o = sd_mmsa_default_options();
    o.sim = sim == 0 ? SD_MMSA_SIM_ZEROS : SD_MMSA_SIM_NONE;
    if (range && cli_parse_range(range, &o.label_lo, &o.label_hi)) {
        fprintf(stderr, "sdumc import-mmsa: --label-range: '%s' is not LO,HI with LO < HI (e.g. -1,1)\n", range);
        return 2;
    }
    sd_mmsa_report r;
    sd_error err;
    if (sd_mmsa_import(pkl, out, &o, &r, &err)) {
        fprintf(stderr, "sdumc import-mmsa: %s\n(nothing was written)\n", err.msg);
        return 1;
    }
    print_summary(out, &r, &o);
    return 0;
}
