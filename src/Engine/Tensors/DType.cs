namespace TaskMerge.Engine.Tensors;

/// <summary>Storage element types of safetensors files.</summary>
public enum DType
{
    F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool,
}

/// <summary>Names, sizes and conversions of <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType t) => t switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        _ => 1,
    };

    /// <summary>True for the types a merge computes on (F32, F16, BF16, F64).</summary>
    public static bool IsFloat(this DType t) => t is DType.F32 or DType.F16 or DType.BF16 or DType.F64;

    /// <summary>The dtype string used in safetensors headers ("F32", "BF16", ...).</summary>
    public static string SafetensorsName(this DType t) => t switch
    {
        DType.Bool => "BOOL",
        _ => t.ToString(),
    };

    /// <summary>Parses a safetensors header dtype string; null when unknown.</summary>
    public static DType? FromSafetensorsName(string s) => s switch
    {
        "F32" => DType.F32, "F16" => DType.F16, "BF16" => DType.BF16, "F64" => DType.F64,
        "I64" => DType.I64, "I32" => DType.I32, "I16" => DType.I16, "I8" => DType.I8,
        "U8" => DType.U8, "BOOL" => DType.Bool,
        _ => null,
    };

    /// <summary>The torch dtype name written to config.json ("float32", "bfloat16", ...).</summary>
    public static string TorchName(this DType t) => t switch
    {
        DType.F32 => "float32", DType.F16 => "float16", DType.BF16 => "bfloat16", DType.F64 => "float64",
        DType.I64 => "int64", DType.I32 => "int32", DType.I16 => "int16", DType.I8 => "int8",
        DType.U8 => "uint8", _ => "bool",
    };

    /// <summary>Parses a config dtype ("float32", "fp16", "bfloat16", "bf16", ...); null when unknown.</summary>
    public static DType? FromConfigName(string s) => s.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" or "float" => DType.F32,
        "float16" or "fp16" or "f16" or "half" => DType.F16,
        "bfloat16" or "bf16" => DType.BF16,
        "float64" or "fp64" or "f64" or "double" => DType.F64,
        _ => null,
    };
}
