// config/yaml_documents.cc — see yaml_documents.h.
#include "config/yaml_documents.h"

namespace picket::config {
namespace {

// The first line of `piece` (1-based) holding something other than blanks, comments, document
// markers and a null scalar; 0 when there is none.
int FirstContentLine(std::string_view piece) {
  int line = 0;
  int first = 0;
  std::string content;
  while (!piece.empty()) {
    ++line;
    size_t eol = piece.find('\n');
    std::string_view l = piece.substr(0, eol);
    piece.remove_prefix(eol == std::string_view::npos ? piece.size() : eol + 1);
    if (l.starts_with("---") || l.starts_with("...")) l.remove_prefix(3);
    if (size_t hash = l.find('#'); hash != std::string_view::npos) l = l.substr(0, hash);
    size_t b = l.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) continue;
    size_t e = l.find_last_not_of(" \t\r");
    if (first == 0) first = line;
    content += l.substr(b, e - b + 1);
  }
  if (content.empty() || content == "~" || content == "null" || content == "Null" ||
      content == "NULL") {
    return 0;
  }
  return first;
}

}  // namespace

std::vector<YamlDocument> ParseYamlDocuments(std::string_view text, const std::string& file) {
  std::vector<YamlDocument> docs;
  auto parse = [&](std::string_view piece, int line_offset) {
    try {
      YAML::Node root = YAML::Load(std::string(piece));
      if (!root.IsDefined() || root.IsNull()) {
        // yaml-cpp 0.7 returns an empty document for some garbage (a leading `,`) instead of
        // failing: anything but comments, markers and a null scalar is an error here.
        if (int line = FirstContentLine(piece); line > 0) {
          docs.push_back({YAML::Node(), line_offset,
                          Error{file, line + line_offset, "", "",
                                "YAML parse error: unexpected content (not a YAML document)"}});
          return;
        }
      }
      docs.push_back({root, line_offset, std::nullopt});
    } catch (const YAML::Exception& e) {
      int line = e.mark.is_null() ? 0 : e.mark.line + 1 + line_offset;
      docs.push_back(
          {YAML::Node(), line_offset, Error{file, line, "", "", "YAML parse error: " + e.msg}});
    } catch (const std::exception& e) {
      docs.push_back({YAML::Node(), line_offset,
                      Error{file, 0, "", "", std::string("YAML parse error: ") + e.what()}});
    }
  };
  auto is_marker = [](std::string_view line, std::string_view marker) {
    return line.starts_with(marker) && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' ||
                                        line[3] == '\r' || line[3] == '\n');
  };
  size_t piece_start = 0;
  int piece_line = 0;  // lines before the current piece
  int line = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    size_t next = eol == std::string_view::npos ? text.size() : eol + 1;
    std::string_view current = text.substr(pos, next - pos);
    if (is_marker(current, "---") && pos > piece_start) {  // starts the next document
      parse(text.substr(piece_start, pos - piece_start), piece_line);
      piece_start = pos;
      piece_line = line;
    }
    ++line;
    if (is_marker(current, "...")) {  // ends this document
      parse(text.substr(piece_start, next - piece_start), piece_line);
      piece_start = next;
      piece_line = line;
    }
    pos = next;
  }
  if (piece_start < text.size()) parse(text.substr(piece_start), piece_line);
  return docs;
}

}  // namespace picket::config
