using TaskMerge.Engine.IO;
using Xunit;

namespace TaskMerge.Engine.Tests.IO;

public class MalformedCorpusTests
{
    private static string CorpusDir => Path.Combine(AppContext.BaseDirectory, "data", "malformed");

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (string f in Directory.GetFiles(CorpusDir, "*.safetensors").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(f));
        return data;
    }

    /// <summary>What each message must say (a lower-case substring), so each file fails for its own reason.</summary>
    private static readonly Dictionary<string, string> Expected = new()
    {
        ["empty_file"] = "too short",
        ["truncated_4_bytes"] = "too short",
        ["header_len_zero"] = "header length is 0",
        ["header_len_beyond_file"] = "exceeds the file size",
        ["header_len_over_cap"] = "100 mb limit",
        ["header_len_huge"] = "100 mb limit",
        ["header_invalid_utf8"] = "utf-8",
        ["header_not_json"] = "not valid json",
        ["header_json_truncated"] = "not valid json",
        ["header_json_array"] = "not a json object",
        ["header_json_string"] = "not a json object",
        ["header_leading_space"] = "not a json object",
        ["header_trailing_garbage"] = "not valid json",
        ["entry_not_object"] = "must be an object",
        ["missing_dtype"] = "missing 'dtype'",
        ["missing_shape"] = "missing 'shape'",
        ["missing_data_offsets"] = "missing 'data_offsets'",
        ["extra_key_in_entry"] = "unexpected key 'extra'",
        ["unknown_dtype"] = "unsupported dtype 'float32'",
        ["unsupported_dtype_f8"] = "unsupported dtype 'f8_e4m3'",
        ["dtype_not_string"] = "dtype must be a string",
        ["shape_not_list"] = "shape must be a list",
        ["shape_negative"] = "negative dimension",
        ["shape_float_dim"] = "shape must be a list of non-negative integers",
        ["shape_overflow"] = "overflows",
        ["shape_dtype_span_mismatch"] = "needs 16 bytes",
        ["data_offsets_three_entries"] = "data_offsets must be a list [begin, end]",
        ["data_offsets_not_list"] = "data_offsets must be a list [begin, end]",
        ["data_offsets_negative"] = "non-negative",
        ["data_offsets_begin_gt_end"] = "greater than end",
        ["offsets_out_of_bounds"] = "out of bounds",
        ["overlapping_tensors"] = "overlaps",
        ["hole_between_tensors"] = "unused bytes between",
        ["first_tensor_not_at_zero"] = "unused bytes at the start",
        ["trailing_bytes"] = "trailing bytes",
        ["no_tensors_but_data"] = "no tensors",
        ["duplicate_tensor_names"] = "duplicate tensor name 'a'",
        ["metadata_non_string_value"] = "__metadata__",
        ["metadata_not_object"] = "__metadata__ must be an object",
    };

    [Fact]
    public void Corpus_HasAtLeast16Files_AndTheScript()
    {
        Assert.True(Files().Count >= 16);
        // The generator script lives in the source tree; the copy in the output dir proves it is committed alongside.
        Assert.True(File.Exists(Path.Combine(CorpusDir, "make_malformed.py")));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Open_Rejects_WithOneLineMessageNamingTheFile(string fileName)
    {
        string path = Path.Combine(CorpusDir, fileName);
        var ex = Assert.Throws<BadInputException>(() => SafetensorsFile.Open(path));
        Assert.StartsWith(path, ex.Message);
        Assert.Contains(fileName, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain('\r', ex.Message);
        string key = Path.GetFileNameWithoutExtension(fileName);
        if (Expected.TryGetValue(key, out string? want))
            Assert.Contains(want, ex.Message.ToLowerInvariant());

        // ModelSource reports the same problem.
        var ex2 = Assert.Throws<BadInputException>(() => ModelSource.Open(path));
        Assert.Equal(ex.Message, ex2.Message);
    }

    [Fact]
    public void Open_FailureDoesNotKeepTheFileLocked()
    {
        using var dir = new TempDir();
        string path = dir["bad.safetensors"];
        File.Copy(Path.Combine(CorpusDir, "trailing_bytes.safetensors"), path);
        Assert.Throws<BadInputException>(() => SafetensorsFile.Open(path));
        File.Delete(path);
        Assert.False(File.Exists(path));
    }
}
