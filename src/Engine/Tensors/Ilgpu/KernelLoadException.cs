namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>A kernel that could not be compiled or loaded for an accelerator (an intrinsic without a device implementation, a JIT failure).</summary>
internal sealed class KernelLoadException(string kernel, string device, Exception inner)
    : Exception($"kernel {kernel} does not build for {device}: {inner.GetType().Name}: {FirstLine(inner.Message)}", inner)
{
    private static string FirstLine(string message)
    {
        int end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}
