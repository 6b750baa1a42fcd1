#pragma once
// The HTTP surface of streams (docs/http-api.md, "Streams"):
//   POST   /v1/topics/TOPIC          publish the body as an update; {"topic", "seq"}
//   GET    /v1/topics                topics with their retained range
//   GET    /v1/topics/TOPIC          ?after=SEQ&limit=N: retained updates after SEQ
//   PUT    /v1/apps/APP              {"processor"?, "max_per_second"?}
//   GET    /v1/apps[/APP]            apps
//   DELETE /v1/apps/APP
//   GET    /v1/streams               the hub's connections, streams and feeds
//   GET    /v1/streams + Upgrade: websocket   a device connection (frames.h)
// The /v1 routes other than the WebSocket are reached only after the gateway checked the
// bearer token; device connections are open like /fn (docs/security-model.md).

#include "http/http_server.h"
#include "stream/app_store.h"
#include "stream/hub.h"
#include "stream/topic_log.h"

namespace tern::stream {

struct StreamRoutes {
  TopicLog& log;
  AppStore& apps;
  Hub& hub;
};

void handleStreamRequest(const StreamRoutes& routes, http::Request&& req, http::Respond respond);

// The server's upgrade handler for /v1/streams: the connection becomes a device connection
// of the hub; other paths are left to the ordinary handler.
http::UpgradeDecision streamsUpgrade(Hub& hub, const http::Request& req);

}  // namespace tern::stream
