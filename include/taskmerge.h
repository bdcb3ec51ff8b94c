/*
 * taskmerge.h: the C ABI of the TaskMerge engine (libtaskmerge.so).
 *
 * ABI version 1. Functions are added, never changed; TM_ABI_VERSION grows when one is added.
 *
 * Strings are UTF-8 and NUL-terminated. Every function returning int returns a status:
 *   TM_OK (0), TM_ERROR_INTERNAL (1), TM_ERROR_BAD_INPUT (2), TM_CANCELLED (3)
 * (0, 1 and 2 are the CLI's exit codes). On a non-zero status, tm_last_error() gives one line
 * naming the file, tensor or argument and the problem.
 *
 * Loading: the first call starts the engine's .NET runtime inside the process, from the folder
 * "taskmerge/" beside libtaskmerge.so (the self-contained package ships the runtime there, so no
 * .NET installation is needed); this takes a few hundred milliseconds. If it cannot start, every
 * call returns TM_ERROR_INTERNAL and tm_last_error() says why.
 *
 * Thread safety:
 *   - Every function may be called from any thread.
 *   - tm_merge calls may run concurrently (each has its own backend; they compete for memory).
 *   - tm_merge_tensors calls on the same device ("device"/"num_threads" in params_json) are
 *     serialised by the library; calls on different devices run in parallel.
 *   - tm_last_error is per thread: it describes the calling thread's last failed call and stays
 *     valid until that thread's next failing call.
 *   - The progress callback runs on the thread that called tm_merge or on one of the engine's
 *     threads; it must return quickly and must not call tm_merge itself. It may
 *     call tm_cancel.
 *   - tm_cancel may be called from any thread, including a progress callback.
 */
#ifndef TASKMERGE_H
#define TASKMERGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TM_ABI_VERSION 1

#if defined(__GNUC__)
#define TM_API __attribute__((visibility("default")))
#else
#define TM_API
#endif

enum tm_status {
    TM_OK = 0,
    TM_ERROR_INTERNAL = 1,
    TM_ERROR_BAD_INPUT = 2,
    TM_CANCELLED = 3
};

/* What a progress event reports (the `kind` argument of tm_progress_cb). */
enum tm_event {
    TM_EVENT_STAGE = 0,   /* a stage starts: stage, total items (done = 0); text is NULL */
    TM_EVENT_ITEM = 1,    /* one item of the stage is done: text = tensor name, done of total */
    TM_EVENT_WARNING = 2, /* text = a non-fatal problem the user should see */
    TM_EVENT_NOTE = 3,    /* text = something worth knowing, e.g. a resumed checkpoint */
    TM_EVENT_STEP = 4     /* a training step of an iterative stage: done = step, total = steps, text = "loss X" */
};

/* Progress callback; stage and text are valid only during the call. */
typedef void (*tm_progress_cb)(int kind, const char* stage, const char* text, int64_t done, int64_t total, void* user);

/* The library version, e.g. "0.1.0"; a static string (does not start the runtime). */
TM_API const char* tm_version(void);

/* TM_ABI_VERSION of the library (does not start the runtime). */
TM_API int tm_abi_version(void);

/* The calling thread's last error message, or NULL when none. Owned by the library. */
TM_API const char* tm_last_error(void);

/*
 * Merges models as a mergekit-style config says into out_dir, like `taskmerge merge CONFIG OUT_DIR`.
 *   config_yaml_or_path: YAML text (anything containing a line break; model paths are then
 *                        relative to the working directory) or the path of a config file.
 *   options_json: NULL or a JSON object with the CLI's options: "device" ("auto"|"cpu"|"cuda"),
 *                 "num_threads", "out_shard_size" (bytes or "5B"-style text), "random_seed",
 *                 "allow_crimes", "tensor_intersection", "copy_tokenizer", "write_model_card", "overwrite".
 *   cb, user:     NULL or a progress callback and its argument.
 * Returns TM_OK; TM_ERROR_BAD_INPUT for a bad config, path, shape or file, an out_dir that overlaps an
 * input, is foreign (without "overwrite") or locked by another run, or a full / read-only disk;
 * TM_CANCELLED after tm_cancel. The output is committed in one step (docs/CONTRACT.md §1): on any
 * failure or cancel out_dir holds what it held before, and no input changes.
 */
TM_API int tm_merge(const char* config_yaml_or_path, const char* out_dir, const char* options_json,
                    tm_progress_cb cb, void* user);

/* Stops every tm_merge running at this moment (they return TM_CANCELLED); returns how many. */
TM_API int tm_cancel(void);

/*
 * The tensors of a .safetensors file or Hugging Face model directory as JSON:
 * {"path", "tensors": [{"name", "dtype", "shape", "bytes"}], "tensor_count", "elements", "bytes"}.
 * Reads headers only. Free the result with tm_free; NULL on failure (see tm_last_error).
 */
TM_API char* tm_inspect(const char* path);

/* Frees a string returned by the library. NULL is allowed. */
TM_API void tm_free(void* p);

/*
 * Merges one tensor held in host memory, float32, row-major, with the method code a file merge runs
 * per tensor. base (NULL for methods that need none, e.g. linear) and experts[0..n_experts) each hold
 * numel floats of the given shape; out receives numel floats and may not alias an input.
 *   params_json: NULL or a JSON object: the method's parameters as under a config's `parameters:`
 *                ({"lambda": 0.5, "density": 0.2}); "models": one parameter object per expert
 *                ([{"weight": 1}, {"weight": 0.5}]); "seed" (random methods); "tensor" (the name
 *                filters and the random stream see, default "tensor"); "depth" (layer depth for
 *                gradient values, default 0); "device" ("auto"|"cpu"|"cuda", default "auto") and
 *                "num_threads" (CPU threads, 0 = all cores).
 * Each input is copied once into the engine's memory (the upload, on a GPU) and the result once into
 * out. Methods that need a whole-model pass first (awd, ri) return TM_ERROR_BAD_INPUT.
 */
TM_API int tm_merge_tensors(const char* method, const char* params_json, const float* base,
                            const float* const* experts, int n_experts, int64_t numel,
                            const int64_t* shape, int ndim, float* out);

#ifdef __cplusplus
}
#endif

#endif /* TASKMERGE_H */
