// config/manifest_loader.cc — see manifest_loader.h. Files and directories → text → documents
// (manifest_decode.h) → one Cluster; duplicates are checked across everything loaded.
#include "config/manifest_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "config/manifest_decode.h"

namespace picket::config {
namespace {

namespace fs = std::filesystem;

// Decodes `text` into `cluster`, appending errors and notices; shares `budget` across texts.
void DecodeText(std::string_view text, const std::string& file, const LoadOptions& options,
                NodeBudget* budget, Cluster* cluster, Errors* errors,
                std::vector<std::string>* notices) {
  for (const YamlDocument& doc : ParseYamlDocuments(text, file)) {
    if (doc.parse_error) {
      errors->push_back(*doc.parse_error);
      continue;
    }
    DecodeContext ctx{file, options, errors, notices, budget, doc.line_offset};
    DecodeDocument(doc.root, ctx, cluster);
  }
}

bool IsManifestFile(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

std::string ErrnoText(int err) { return std::strerror(err); }

// Expands a path argument into the files to load, sorted (directories recursively).
void CollectFiles(const std::string& arg, std::vector<std::string>* files, Errors* errors) {
  std::error_code ec;
  fs::file_status st = fs::status(arg, ec);
  if (ec || !fs::exists(st)) {
    errors->push_back(
        Error{arg, 0, "", "", "cannot read: " + (ec ? ec.message() : ErrnoText(ENOENT))});
    return;
  }
  if (!fs::is_directory(st)) {
    files->push_back(arg);  // named explicitly: loaded whatever its extension
    return;
  }
  std::vector<std::string> found;
  fs::recursive_directory_iterator it(arg, fs::directory_options::follow_directory_symlink, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && IsManifestFile(it->path())) {
      found.push_back(it->path().string());
    }
  }
  if (ec) {
    errors->push_back(Error{arg, 0, "", "", "cannot read directory: " + ec.message()});
  }
  std::sort(found.begin(), found.end());
  files->insert(files->end(), found.begin(), found.end());
}

std::expected<LoadResult, Errors> Finish(LoadResult result, Errors errors) {
  CheckDuplicates(result.cluster, &errors);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return result;
}

Error TooLarge(const std::string& path, uint64_t size, uint64_t max_bytes) {
  return Error{
      path, 0, "", "",
      "too large: " + std::to_string(size) + " bytes (limit " + std::to_string(max_bytes) + ")"};
}

}  // namespace

std::expected<std::string, Error> ReadManifestFile(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return std::unexpected(Error{path, 0, "", "", "cannot read: " + ec.message()});
  if (size > max_bytes) return std::unexpected(TooLarge(path, size, max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(Error{path, 0, "", "", "cannot read: " + ErrnoText(errno)});
  // Read at most one byte past the limit: a file that grew since the stat is caught here.
  std::string data(static_cast<size_t>(size) + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) return std::unexpected(Error{path, 0, "", "", "cannot read: " + ErrnoText(errno)});
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > size) {
    // It grew: read on, within the limit, to report or return the whole file.
    std::string more(static_cast<size_t>(max_bytes - size) + 1, '\0');
    in.read(more.data(), static_cast<std::streamsize>(more.size()));
    data.append(more, 0, static_cast<size_t>(in.gcount()));
    if (data.size() > max_bytes) return std::unexpected(TooLarge(path, data.size(), max_bytes));
  }
  return data;
}

std::expected<LoadResult, Errors> LoadManifestText(std::string_view text,
                                                   std::string_view file_name,
                                                   const LoadOptions& options) {
  LoadResult result;
  Errors errors;
  NodeBudget budget = NodeBudget::ForText(text.size());
  DecodeText(text, std::string(file_name), options, &budget, &result.cluster, &errors,
             &result.notices);
  return Finish(std::move(result), std::move(errors));
}

std::expected<LoadResult, Errors> LoadManifestPaths(const std::vector<std::string>& paths,
                                                    const LoadOptions& options) {
  LoadResult result;
  Errors errors;
  std::vector<std::string> files;
  for (const std::string& path : paths) CollectFiles(path, &files, &errors);
  for (const std::string& file : files) {
    auto text = ReadManifestFile(file, options.max_file_bytes);
    if (!text) {
      errors.push_back(std::move(text.error()));
      continue;
    }
    NodeBudget budget = NodeBudget::ForText(text->size());  // per file
    DecodeText(*text, file, options, &budget, &result.cluster, &errors, &result.notices);
  }
  return Finish(std::move(result), std::move(errors));
}

}  // namespace picket::config
