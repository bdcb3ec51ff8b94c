/*
 * libtaskmerge.so: the C ABI of include/taskmerge.h over the managed engine (src/Native), hosted
 * with the .NET hosting API. The runtime is found next to this library: <dir>/taskmerge/ holds
 * TaskMerge.Native.dll and, in the self-contained package, the runtime itself (libhostfxr.so,
 * libcoreclr.so, the framework assemblies); a framework-dependent build finds an installed runtime.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <coreclr_delegates.h>
#include <hostfxr.h>
#include <nethost.h>

#include "taskmerge.h"

#define TM_VERSION "0.1.0"
#define EXPORTS_TYPE "TaskMerge.Native.Exports, TaskMerge.Native"

typedef int (*merge_fn)(const char*, const char*, const char*, tm_progress_cb, void*);
typedef int (*cancel_fn)(void);
typedef char* (*inspect_fn)(const char*);
typedef void (*free_fn)(void*);
typedef const char* (*last_error_fn)(void);
typedef int (*merge_tensors_fn)(const char*, const char*, const float*, const float* const*, int, int64_t,
                                const int64_t*, int, float*);

static struct {
    merge_fn merge;
    cancel_fn cancel;
    inspect_fn inspect;
    free_fn free;
    last_error_fn last_error;
    merge_tensors_fn merge_tensors;
} managed;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_status = -1;
static char load_error[PATH_MAX + 256];

static int fail(const char* what, int rc)
{
    snprintf(load_error, sizeof load_error, "libtaskmerge: cannot start the engine runtime: %s (0x%08x)", what, (unsigned)rc);
    return TM_ERROR_INTERNAL;
}

static int resolve(get_function_pointer_fn get, const char* name, void** fn)
{
    int rc = get(EXPORTS_TYPE, name, UNMANAGEDCALLERSONLY_METHOD, NULL, NULL, fn);
    if (rc != 0 || *fn == NULL) {
        char what[128];
        snprintf(what, sizeof what, "entry point %s not found in TaskMerge.Native", name);
        return fail(what, rc);
    }
    return TM_OK;
}

static int start_runtime(void)
{
    Dl_info self;
    if (!dladdr((void*)&start_runtime, &self) || !self.dli_fname) return fail("dladdr found no path for libtaskmerge.so", 0);
    char dir[PATH_MAX], assembly[PATH_MAX], hostfxr_path[PATH_MAX];
    if (!realpath(self.dli_fname, dir)) return fail(self.dli_fname, 0);
    char* slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (snprintf(assembly, sizeof assembly, "%s/taskmerge/TaskMerge.Native.dll", dir) >= (int)sizeof assembly) return fail("path too long", 0);

    struct get_hostfxr_parameters where = { sizeof where, assembly, NULL };
    size_t size = sizeof hostfxr_path;
    int rc = get_hostfxr_path(hostfxr_path, &size, &where);
    if (rc != 0) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "no hostfxr beside %s nor an installed .NET runtime", assembly);
        return fail(what, rc);
    }
    void* lib = dlopen(hostfxr_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fail(dlerror(), 0);
    hostfxr_initialize_for_dotnet_command_line_fn init =
        (hostfxr_initialize_for_dotnet_command_line_fn)dlsym(lib, "hostfxr_initialize_for_dotnet_command_line");
    hostfxr_get_runtime_delegate_fn get_delegate = (hostfxr_get_runtime_delegate_fn)dlsym(lib, "hostfxr_get_runtime_delegate");
    hostfxr_close_fn close_context = (hostfxr_close_fn)dlsym(lib, "hostfxr_close");
    if (!init || !get_delegate || !close_context) return fail("hostfxr lacks the hosting API", 0);

    /* An application context: hostfxr hosts a self-contained runtime only for an app. */
    const char* argv[] = { assembly };
    hostfxr_handle context = NULL;
    rc = init(1, argv, NULL, &context);
    if (rc != 0 || !context) {
        if (context) close_context(context);
        return fail(assembly, rc);
    }
    get_function_pointer_fn get = NULL;
    rc = get_delegate(context, hdt_get_function_pointer, (void**)&get);
    close_context(context);
    if (rc != 0 || !get) return fail("hdt_get_function_pointer", rc);

    int status;
    if ((status = resolve(get, "Merge", (void**)&managed.merge)) != TM_OK) return status;
    if ((status = resolve(get, "Cancel", (void**)&managed.cancel)) != TM_OK) return status;
    if ((status = resolve(get, "Inspect", (void**)&managed.inspect)) != TM_OK) return status;
    if ((status = resolve(get, "Free", (void**)&managed.free)) != TM_OK) return status;
    if ((status = resolve(get, "LastError", (void**)&managed.last_error)) != TM_OK) return status;
    return resolve(get, "MergeTensors", (void**)&managed.merge_tensors);
}

static void load(void) { load_status = start_runtime(); }

static int loaded(void)
{
    pthread_once(&load_once, load);
    return load_status == TM_OK;
}

TM_API const char* tm_version(void) { return TM_VERSION; }

TM_API int tm_abi_version(void) { return TM_ABI_VERSION; }

TM_API const char* tm_last_error(void)
{
    if (!loaded()) return load_error;
    return managed.last_error();
}

TM_API int tm_merge(const char* config_yaml_or_path, const char* out_dir, const char* options_json, tm_progress_cb cb, void* user)
{
    if (!loaded()) return TM_ERROR_INTERNAL;
    return managed.merge(config_yaml_or_path, out_dir, options_json, cb, user);
}

TM_API int tm_cancel(void)
{
    if (!loaded()) return 0;
    return managed.cancel();
}

TM_API char* tm_inspect(const char* path)
{
    if (!loaded()) return NULL;
    return managed.inspect(path);
}

TM_API void tm_free(void* p)
{
    if (p && loaded()) managed.free(p);
}

TM_API int tm_merge_tensors(const char* method, const char* params_json, const float* base, const float* const* experts,
                            int n_experts, int64_t numel, const int64_t* shape, int ndim, float* out)
{
    if (!loaded()) return TM_ERROR_INTERNAL;
    return managed.merge_tensors(method, params_json, base, experts, n_experts, numel, shape, ndim, out);
}
