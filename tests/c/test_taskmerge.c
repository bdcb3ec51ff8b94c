/*
 * Tests of the C ABI (include/taskmerge.h), run by .ci/run from the repository root:
 *   test_taskmerge CLI_TIES_OUT/model.safetensors SCRATCH_DIR
 * CLI_TIES_OUT is `taskmerge merge examples/ties.yml` run by the CLI. Prints one line per test and
 * ends with "c: N passed, N failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "taskmerge.h"

static const char* cli_reference;
static const char* scratch;
static int passed, failed;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL %s: ", __func__); printf(__VA_ARGS__); printf("\n"); return 0; } } while (0)

static char* path_in(const char* dir, const char* name)
{
    static char buf[8][4096];
    static int next;
    char* p = buf[next++ % 8];
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

static unsigned char* read_file(const char* path, long* size)
{
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char* data = malloc(*size + 1);
    if (fread(data, 1, *size, f) != (size_t)*size) { free(data); data = NULL; }
    else data[*size] = 0;
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

static int exists(const char* path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Entries of dir whose name contains "tmp" or ends in .safetensors. */
static int leftovers(const char* dir)
{
    DIR* d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent* e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strstr(e->d_name, "tmp") || (len > 12 && strcmp(e->d_name + len - 12, ".safetensors") == 0)) n++;
    }
    closedir(d);
    return n;
}

/* Entries beside OUT_DIR that a run of it leaves (staging directory, lock file): ".<name>.taskmerge-*". */
static int staging_leftovers(const char* parent, const char* name)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, ".%s.taskmerge", name);
    DIR* d = opendir(parent);
    if (!d) return 0;
    int n = 0;
    struct dirent* e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static int merge_through_tm_merge_equals_the_cli_bytes(void)
{
    const char* out = path_in(scratch, "c-ties");
    int status = tm_merge("examples/ties.yml", out, "{\"device\": \"cpu\"}", NULL, NULL);
    CHECK(status == TM_OK, "tm_merge returned %d: %s", status, tm_last_error());
    CHECK(same_bytes(path_in(out, "model.safetensors"), cli_reference), "%s/model.safetensors differs from %s", out, cli_reference);
    return 1;
}

static int yaml_text_config_equals_the_same_config_by_path(void)
{
    const char* text =
        "merge_method: task_arithmetic\n"
        "base_model: examples/zoo/base\n"
        "models:\n"
        "  - model: examples/zoo/expert_0\n"
        "  - model: examples/zoo/expert_1\n"
        "  - model: examples/zoo/expert_2\n"
        "  - model: examples/zoo/expert_3\n"
        "parameters:\n"
        "  lambda: 0.3\n"
        "dtype: float32\n";
    const char* by_text = path_in(scratch, "c-ta-text");
    const char* by_path = path_in(scratch, "c-ta-path");
    int status = tm_merge(text, by_text, NULL, NULL, NULL);
    CHECK(status == TM_OK, "tm_merge(text) returned %d: %s", status, tm_last_error());
    status = tm_merge("examples/task_arithmetic.yml", by_path, "{\"num_threads\": 1, \"write_model_card\": false}", NULL, NULL);
    CHECK(status == TM_OK, "tm_merge(path) returned %d: %s", status, tm_last_error());
    CHECK(same_bytes(path_in(by_text, "model.safetensors"), path_in(by_path, "model.safetensors")), "text and path configs differ");
    CHECK(!exists(path_in(by_path, "README.md")), "write_model_card: false still wrote README.md");
    return 1;
}

struct progress_log {
    int stages, items, warnings;
    int64_t stage_total, last_done;
    int monotone;
    char first_item[256];
};

static void record_progress(int kind, const char* stage, const char* text, int64_t done, int64_t total, void* user)
{
    struct progress_log* log = user;
    if (kind == TM_EVENT_STAGE && strcmp(stage, "merge") == 0) {
        log->stages++;
        log->stage_total = total;
    } else if (kind == TM_EVENT_ITEM) {
        if (log->items == 0) snprintf(log->first_item, sizeof log->first_item, "%s", text);
        log->items++;
        if (done != log->last_done + 1 || total != log->stage_total) log->monotone = 0;
        log->last_done = done;
    } else if (kind == TM_EVENT_WARNING) {
        log->warnings++;
    }
}

static int progress_callback_sees_every_tensor_once_in_order(void)
{
    struct progress_log log = { .monotone = 1 };
    int status = tm_merge("examples/ties.yml", path_in(scratch, "c-progress"), NULL, record_progress, &log);
    CHECK(status == TM_OK, "tm_merge returned %d: %s", status, tm_last_error());
    CHECK(log.stages == 1, "%d merge stages", log.stages);
    CHECK(log.stage_total == 41, "merge stage total %lld, the zoo has 41 tensors", (long long)log.stage_total);
    CHECK(log.items == 41 && log.last_done == 41 && log.monotone, "%d items, last done %lld, monotone %d", log.items, (long long)log.last_done, log.monotone);
    CHECK(strcmp(log.first_item, "vision_model.embeddings.class_embedding") == 0, "first item %s", log.first_item);
    return 1;
}

static int missing_config_is_bad_input_naming_the_file(void)
{
    int status = tm_merge("examples/no-such.yml", path_in(scratch, "c-bad"), NULL, NULL, NULL);
    CHECK(status == TM_ERROR_BAD_INPUT, "status %d", status);
    const char* e = tm_last_error();
    CHECK(e && strstr(e, "examples/no-such.yml") && strstr(e, "not found"), "message: %s", e ? e : "(null)");
    CHECK(!exists(path_in(scratch, "c-bad")), "a failed plan created OUT_DIR");
    return 1;
}

static int bad_options_and_tensor_arguments_are_bad_input(void)
{
    int status = tm_merge("examples/ties.yml", path_in(scratch, "c-bad-options"), "{\"devcie\": \"cpu\"}", NULL, NULL);
    CHECK(status == TM_ERROR_BAD_INPUT && strstr(tm_last_error(), "devcie"), "unknown option: %d %s", status, tm_last_error());

    float a[4] = { 1, 2, 3, 4 }, b[4] = { 0 }, out[4];
    const float* experts[1] = { a };
    const int64_t shape[2] = { 2, 2 };
    status = tm_merge_tensors("tie", NULL, b, experts, 1, 4, shape, 2, out);
    CHECK(status == TM_ERROR_BAD_INPUT && strstr(tm_last_error(), "unknown merge_method 'tie'"), "unknown method: %d %s", status, tm_last_error());
    status = tm_merge_tensors("ties", NULL, b, experts, 1, 5, shape, 2, out);
    CHECK(status == TM_ERROR_BAD_INPUT && strstr(tm_last_error(), "numel"), "numel mismatch: %d %s", status, tm_last_error());
    status = tm_merge_tensors("ties", "{\"densty\": 0.5}", b, experts, 1, 4, shape, 2, out);
    CHECK(status == TM_ERROR_BAD_INPUT && strstr(tm_last_error(), "densty"), "unknown parameter: %d %s", status, tm_last_error());
    status = tm_merge_tensors("awd", NULL, b, experts, 1, 4, shape, 2, out);
    CHECK(status == TM_ERROR_BAD_INPUT && strstr(tm_last_error(), "whole model"), "whole-model method: %d %s", status, tm_last_error());
    return 1;
}

static void* read_last_error(void* result)
{
    *(const char**)result = tm_last_error();
    return NULL;
}

static int last_error_is_per_thread(void)
{
    tm_merge("examples/no-such.yml", path_in(scratch, "c-bad"), NULL, NULL, NULL);
    const char* other = "unset";
    pthread_t t;
    pthread_create(&t, NULL, read_last_error, &other);
    pthread_join(t, NULL);
    CHECK(other == NULL, "a fresh thread sees \"%s\"", other);
    CHECK(tm_last_error() != NULL, "the failing thread lost its message");
    return 1;
}

static int linear_without_base_is_the_normalized_weighted_mean(void)
{
    const float e0[3] = { 1.0f, -2.0f, 4.0f }, e1[3] = { 3.0f, 2.0f, -4.0f };
    const float* experts[2] = { e0, e1 };
    const int64_t shape[1] = { 3 };
    float out[3];
    int status = tm_merge_tensors("linear", "{\"models\": [{\"weight\": 3}, {\"weight\": 1}]}", NULL, experts, 2, 3, shape, 1, out);
    CHECK(status == TM_OK, "status %d: %s", status, tm_last_error());
    for (int i = 0; i < 3; i++) {
        double expected = (3.0 * e0[i] + 1.0 * e1[i]) / 4.0;
        CHECK(fabs(out[i] - expected) < 1e-6, "out[%d] = %.9g, expected %.9g", i, out[i], expected);
    }
    return 1;
}

static int ties_keeps_the_elected_sign_mean(void)
{
    /* density 1: every entry kept; sign of Σ τ elects, disjoint mean of the agreeing τ. */
    const float base[4] = { 0, 0, 0, 0 };
    const float e0[4] = { 1.0f, -2.0f, 0.5f, 0.0f }, e1[4] = { 3.0f, 1.0f, -1.5f, 2.0f };
    const float* experts[2] = { e0, e1 };
    const int64_t shape[1] = { 4 };
    const double expected[4] = { 2.0, -2.0, -1.5, 2.0 };
    float out[4];
    int status = tm_merge_tensors("ties", "{\"density\": 1.0}", base, experts, 2, 4, shape, 1, out);
    CHECK(status == TM_OK, "status %d: %s", status, tm_last_error());
    for (int i = 0; i < 4; i++) CHECK(fabs(out[i] - expected[i]) < 1e-6, "out[%d] = %.9g, expected %.9g", i, out[i], expected[i]);
    return 1;
}

static atomic_int first_item_seen, cancel_sent;

static void wait_for_cancel(int kind, const char* stage, const char* text, int64_t done, int64_t total, void* user)
{
    (void)stage; (void)text; (void)done; (void)total; (void)user;
    if (kind != TM_EVENT_ITEM || atomic_exchange(&first_item_seen, 1)) return;
    while (!atomic_load(&cancel_sent)) ;
}

struct merge_call { const char* out; int status; };

static void* merge_in_thread(void* arg)
{
    struct merge_call* call = arg;
    call->status = tm_merge("examples/ties.yml", call->out, NULL, wait_for_cancel, NULL);
    return NULL;
}

static int cancel_from_another_thread_stops_the_merge_and_leaves_no_model(void)
{
    struct merge_call call = { path_in(scratch, "c-cancel"), -1 };
    pthread_t t;
    pthread_create(&t, NULL, merge_in_thread, &call);
    while (!atomic_load(&first_item_seen)) ;
    int cancelled = tm_cancel();
    atomic_store(&cancel_sent, 1);
    pthread_join(t, NULL);
    CHECK(cancelled == 1, "tm_cancel stopped %d merges", cancelled);
    CHECK(call.status == TM_CANCELLED, "status %d: %s", call.status, tm_last_error());
    CHECK(leftovers(call.out) == 0, "%s holds %d .safetensors or temp files", call.out, leftovers(call.out));
    CHECK(staging_leftovers(scratch, "c-cancel") == 0, "%s holds a staging directory or lock of c-cancel", scratch);
    CHECK(tm_cancel() == 0, "a later tm_cancel still found a merge");
    return 1;
}

static int inspect_lists_the_tensors_as_json(void)
{
    char* json = tm_inspect("examples/zoo/base");
    CHECK(json, "NULL: %s", tm_last_error());
    int ok = strstr(json, "\"tensor_count\":41") && strstr(json, "\"name\":\"visual_projection.weight\",\"dtype\":\"F32\",\"shape\":[32,64]");
    tm_free(json);
    CHECK(ok, "unexpected JSON");
    CHECK(tm_inspect("examples/zoo/nothing") == NULL && strstr(tm_last_error(), "examples/zoo/nothing"), "missing model: %s", tm_last_error());
    return 1;
}

int main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CLI_TIES_OUT/model.safetensors SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    cli_reference = argv[1];
    scratch = argv[2];
    int (*tests[])(void) = {
        merge_through_tm_merge_equals_the_cli_bytes,
        yaml_text_config_equals_the_same_config_by_path,
        progress_callback_sees_every_tensor_once_in_order,
        missing_config_is_bad_input_naming_the_file,
        bad_options_and_tensor_arguments_are_bad_input,
        last_error_is_per_thread,
        linear_without_base_is_the_normalized_weighted_mean,
        ties_keeps_the_elected_sign_mean,
        cancel_from_another_thread_stops_the_merge_and_leaves_no_model,
        inspect_lists_the_tensors_as_json,
    };
    const char* names[] = {
        "merge_through_tm_merge_equals_the_cli_bytes",
        "yaml_text_config_equals_the_same_config_by_path",
        "progress_callback_sees_every_tensor_once_in_order",
        "missing_config_is_bad_input_naming_the_file",
        "bad_options_and_tensor_arguments_are_bad_input",
        "last_error_is_per_thread",
        "linear_without_base_is_the_normalized_weighted_mean",
        "ties_keeps_the_elected_sign_mean",
        "cancel_from_another_thread_stops_the_merge_and_leaves_no_model",
        "inspect_lists_the_tensors_as_json",
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (tests[i]()) { printf("ok %s\n", names[i]); passed++; }
        else failed++;
    }
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
