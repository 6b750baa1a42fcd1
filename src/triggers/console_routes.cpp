// GET /ui, /ui/ and /ui/FILE: the web console's files (console_assets.h). The page is one
// document (index.html) whose views are chosen by the URL's fragment (#/functions), so the
// only paths are the files themselves; anything else under /ui is 404. Every answer asks
// the browser to revalidate (Cache-Control: no-cache) with the file's SHA-256 as its ETag,
// so a node upgraded in place never serves a stale page and an unchanged file costs a 304.
// The content security policy allows only the node's own origin: the console loads nothing
// from elsewhere (it works offline) and runs no inline script.

#include <fmt/format.h>

#include "triggers/console_assets.h"
#include "triggers/http_gateway.h"

namespace tern::triggers {

namespace {

constexpr std::string_view kPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const EmbeddedFile* findAsset(std::string_view path) {
  if (path == "/ui" || path == "/ui/") path = "/ui/index.html";
  if (!path.starts_with("/ui/")) return nullptr;
  path.remove_prefix(4);
  for (const auto& a : consoleAssets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

}  // namespace

std::string_view consoleContentType(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
      {".png", "image/png"},                 {".ico", "image/x-icon"},
  };
  for (const auto& [ext, type] : kTypes) {
    if (path.ends_with(ext)) return type;
  }
  return {};
}

http::Response HttpGateway::consoleAsset(const http::Request& req) const {
  if (req.method != "GET" && req.method != "HEAD") return methodNotAllowed("GET, HEAD");
  const EmbeddedFile* asset = findAsset(req.path);
  if (!asset) {
    return errorResponse(Error(ErrorCode::kNotFound,
                               fmt::format("no console page at {}: the console is at /ui/",
                                           req.path.substr(0, 200))));
  }
  http::Response r;
  std::string etag = fmt::format("\"{}\"", asset->sha256);
  r.contentType = std::string(consoleContentType(asset->path));
  r.headers.push_back({"ETag", etag});
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  r.headers.push_back({"Content-Security-Policy", std::string(kPolicy)});
  const std::string* match = req.header("If-None-Match");
  if (match && *match == etag) {
    r.status = 304;
    return r;
  }
  if (req.method == "GET") r.body = std::string(asset->content);
  return r;
}

}  // namespace tern::triggers
