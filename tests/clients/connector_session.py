"""A binance-connector session against the local exchange, run by the connector's own
Python environment (see test_binance_connector.py): ``Spot`` REST calls and
``SpotWebsocketStreamClient`` with its defaults, live SUBSCRIBE / UNSUBSCRIBE. Prints one
JSON object of what it saw; it asserts nothing itself."""

import json
import sys
import threading
import time

from binance.error import ClientError
from binance.spot import Spot
from binance.websocket.spot.websocket_stream import SpotWebsocketStreamClient

ws_url, rest_url, symbol, trade_kind = sys.argv[1:5]
stream_symbol = symbol.lower()
spot = Spot(base_url=rest_url)
seen = {
    "time": spot.time()["serverTime"],
    "depth": spot.depth(symbol, limit=10),
    "trades": len(spot.trades(symbol, limit=5)),
    "agg_trades": len(spot.agg_trades(symbol, limit=5)),
    "klines": [row[0] for row in spot.klines(symbol, "1m")],
    "ui_klines": [row[0] for row in spot.ui_klines(symbol, "1m")],
    "avg_price": spot.avg_price(symbol),
    "ticker_price": spot.ticker_price(symbol),
    "book_ticker": spot.book_ticker(symbol),
    "ticker_24hr": spot.ticker_24hr(symbol)["symbol"],
    "exchange_info": [s["symbol"] for s in spot.exchange_info(symbol=symbol)["symbols"]],
    "exchange_info_list": [s["symbol"] for s in spot.exchange_info(symbols=[symbol])["symbols"]],
}
try:
    spot.exchange_info(symbol="NOPEUSDT")
except ClientError as error:
    seen["unknown_symbol"] = [error.status_code, error.error_code]

messages: list[dict] = []
lock = threading.Lock()


def on_message(_, text: str) -> None:
    with lock:
        messages.append(json.loads(text))


client = SpotWebsocketStreamClient(stream_url=ws_url, on_message=on_message)
client.diff_book_depth(symbol=symbol, id=1)  # the default speed: @depth@1000ms
time.sleep(0.3)
getattr(client, "trade" if trade_kind == "trade" else "agg_trade")(symbol=symbol, id=2)
time.sleep(3.5)
client.list_subscribe(id=3)
time.sleep(0.5)
client.diff_book_depth(symbol=symbol, id=4, action=SpotWebsocketStreamClient.ACTION_UNSUBSCRIBE)
time.sleep(0.5)
with lock:
    cut = len(messages)
time.sleep(2.5)
client.list_subscribe(id=5)
time.sleep(0.5)
client.stop()
with lock:
    seen["messages"] = messages
    seen["cut"] = cut
print(json.dumps(seen))
