/*
 * Merges the bundled zoo through the C ABI, then merges one tensor held in memory.
 *   cc -Iinclude examples/c/merge.c -Lartifacts/native -ltaskmerge -Wl,-rpath,artifacts/native -o merge
 *   ./merge examples/ties.yml out/ties-c [CLI_OUT/model.safetensors]
 * With a third argument the merged model.safetensors must equal that file byte for byte.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskmerge.h"

static void on_progress(int kind, const char* stage, const char* text, int64_t done, int64_t total, void* user)
{
    (void)user;
    if (kind == TM_EVENT_ITEM && (done == total || done % 10 == 0))
        printf("  %s %lld/%lld %s\n", stage, (long long)done, (long long)total, text);
    else if (kind == TM_EVENT_WARNING)
        printf("  warning: %s\n", text);
}

static unsigned char* read_file(const char* path, long* size)
{
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char* data = malloc(*size ? *size : 1);
    if (fread(data, 1, *size, f) != (size_t)*size) { free(data); data = NULL; }
    fclose(f);
    return data;
}

static int same_bytes(const char* a, const char* b)
{
    long na = 0, nb = 0;
    unsigned char* x = read_file(a, &na);
    unsigned char* y = read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

int main(int argc, char** argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG.yml OUT_DIR [REFERENCE.safetensors]\n", argv[0]);
        return 2;
    }
    printf("taskmerge %s (abi %d)\n", tm_version(), tm_abi_version());

    int status = tm_merge(argv[1], argv[2], "{\"device\": \"cpu\"}", on_progress, NULL);
    if (status != TM_OK) {
        fprintf(stderr, "tm_merge: status %d: %s\n", status, tm_last_error());
        return status;
    }
    if (argc > 3) {
        char merged[4096];
        snprintf(merged, sizeof merged, "%s/model.safetensors", argv[2]);
        if (!same_bytes(merged, argv[3])) {
            fprintf(stderr, "%s differs from %s\n", merged, argv[3]);
            return 1;
        }
        printf("%s equals %s byte for byte\n", merged, argv[3]);
    }

    /* θ = θ₀ + λ·Σ wᵢ(θᵢ − θ₀) on a 2×3 tensor, against the same sum computed here. */
    const float base[6] = { 0.5f, -1.0f, 2.0f, 0.0f, 3.0f, -0.25f };
    const float e0[6] = { 1.5f, -1.0f, 1.0f, 0.5f, 2.0f, 0.75f };
    const float e1[6] = { 0.0f, 1.0f, 2.5f, -0.5f, 3.5f, -1.25f };
    const float* experts[2] = { e0, e1 };
    const int64_t shape[2] = { 2, 3 };
    const double lambda = 0.5, w[2] = { 1.0, 0.25 };
    float out[6];
    status = tm_merge_tensors("task_arithmetic", "{\"lambda\": 0.5, \"models\": [{\"weight\": 1.0}, {\"weight\": 0.25}], \"device\": \"cpu\"}",
                              base, experts, 2, 6, shape, 2, out);
    if (status != TM_OK) {
        fprintf(stderr, "tm_merge_tensors: status %d: %s\n", status, tm_last_error());
        return status;
    }
    for (int i = 0; i < 6; i++) {
        double expected = base[i] + lambda * (w[0] * (e0[i] - base[i]) + w[1] * (e1[i] - base[i]));
        if (fabs(out[i] - expected) > 1e-6 * (1 + fabs(expected))) {
            fprintf(stderr, "tm_merge_tensors: out[%d] = %.9g, expected %.9g\n", i, out[i], expected);
            return 1;
        }
    }
    printf("tm_merge_tensors: task_arithmetic matches the hand-computed sum\n");
    return 0;
}
