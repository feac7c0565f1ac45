//+------------------------------------------------------------------+
//| MT5DB_Executor.mq5                                               |
//| Polls an MT5 Trading DB API for trade signals, places them under |
//| local risk caps and acknowledges each one: GET /signals/next,    |
//| POST /signals/ack.  Contract: docs/ea-contract.md §11            |
//+------------------------------------------------------------------+
#property copyright "MT5 Trading DB"
#property version   "1.00"
#property description "Polls /signals/next on a timer, refuses expired signals by broker time, never opens"
#property description "the same signal twice (its id is in the order comment), caps lots, positions and the"
#property description "day's loss, places the order and retries /signals/ack until the API confirms it."

#include <Trade/Trade.mqh>

//=== WIRE FORMAT BEGIN ==============================================
// Every request this EA sends and every part of an answer it reads is written here, and only
// here (tests/unit/ea/test_wire_formats.py extracts this block and checks each body against
// the API). Placeholders are %NAME%; the code fills them with StringReplace:
//   %ACCOUNT%    the MT5 login (or the AccountId input), URL-encoded in the query
//   %SYMBOLS%    the Symbols input, each name URL-encoded, joined by ','
//   %TIMEFRAME%  the Timeframe input (a name or numeric code, docs/ea-contract.md §6)
//   %ID%         the signal's id as received
//   %STATUS%     FILLED or REJECTED
//   %SYMBOL% %SIDE%   the signal's symbol and side as received (JSON-escaped)
//   %TICKET%     the order ticket, an integer
//   %PRICE%      DoubleToString(fill price, SYMBOL_DIGITS)
//   %TS%         execution time on the broker clock, YYYY-MM-DDTHH:MM:SSZ
//   %KEY%        the API key
#define MT5DB_NEXT_QUERY      "/signals/next?account_id=%ACCOUNT%&symbols=%SYMBOLS%&timeframe=%TIMEFRAME%"
#define MT5DB_ACK_PATH        "/signals/ack"
#define MT5DB_ACK_FILLED      "{\"id\":\"%ID%\",\"status\":\"FILLED\",\"symbol\":\"%SYMBOL%\",\"side\":\"%SIDE%\",\"mt5_ticket\":%TICKET%,\"price\":%PRICE%,\"ts_exec\":\"%TS%\",\"account_id\":\"%ACCOUNT%\"}"
#define MT5DB_ACK_REJECTED    "{\"id\":\"%ID%\",\"status\":\"REJECTED\",\"symbol\":\"%SYMBOL%\",\"side\":\"%SIDE%\",\"ts_exec\":\"%TS%\",\"account_id\":\"%ACCOUNT%\"}"
#define MT5DB_HEADERS         "Accept: application/json\r\nUser-Agent: MT5DB-Executor/1.00\r\n"
#define MT5DB_JSON_HEADER     "Content-Type: application/json\r\n"
#define MT5DB_KEY_HEADER      "X-API-Key: %KEY%\r\n"
// The poll's answer: 200 {"signals":[{"id":"...","symbol":"...","timeframe":"...","side":"BUY",
// "confidence":0.61,"ttl_sec":90,"sl_pips":20,"tp_pips":40,"meta":{...}}]} or {"signals":[]}.
#define MT5DB_SIGNALS_ARRAY   "\"signals\":["
#define MT5DB_KEY_ID          "id"
#define MT5DB_KEY_SYMBOL      "symbol"
#define MT5DB_KEY_TIMEFRAME   "timeframe"
#define MT5DB_KEY_SIDE        "side"
#define MT5DB_KEY_CONFIDENCE  "confidence"
#define MT5DB_KEY_TTL         "ttl_sec"
#define MT5DB_KEY_SL          "sl_pips"
#define MT5DB_KEY_TP          "tp_pips"
#define MT5DB_KEY_META        "meta"
// How a key's value starts in the API's compact JSON (orjson: no spaces).
#define MT5DB_STRING_VALUE    "\"%NAME%\":\""
#define MT5DB_VALUE           "\"%NAME%\":"
// The ack's answer: 200 {"ok":true} (also {"ok":true,"known":false} for an id the API forgot).
#define MT5DB_ACK_OK          "\"ok\":true"
//=== WIRE FORMAT END ================================================

input string API_BaseUrl       = "http://127.0.0.1:18001"; // API base URL (also under Allow WebRequest)
input string API_Key           = "";                       // API key with the signals scope
input string AccountId         = "";                       // account_id sent to the API ("" = this login)
input string Symbols           = "";                       // symbols to take signals for ("" = the chart's)
input string Timeframe         = "M15";                    // the signals' timeframe
input int    PollSeconds       = 5;                        // how often to ask for a signal
input double Lots              = 0.01;                     // volume per order
input double MaxLots           = 0.10;                     // cap on one order's volume
input int    MaxPositions      = 3;                        // cap on open positions of this EA
input double MaxDailyLoss      = 100.0;                    // stop trading for the day below -this (account currency)
input int    SlippagePoints    = 10;                       // allowed deviation from the quote
input long   MagicNumber       = 7730001;                  // marks this EA's orders
input int    RequestTimeoutMs  = 5000;                     // WebRequest timeout
input int    HistoryDays       = 14;                       // how far back to look for a signal already traded

// A signal as received (docs/ea-contract.md §11: the fields the EA uses).
struct Signal
  {
   string            id;
   string            symbol;
   string            timeframe;
   string            side;
   double            confidence;
   int               ttl_sec;
   int               sl_pips;
   int               tp_pips;
   datetime          received;    // broker clock when it arrived: the TTL runs from here
  };

#define PENDING_FILE "MT5DB_pending_acks.txt"   // one ack body per line, in the common Files folder

string  g_pending[];     // acks not yet confirmed by the API, retried every timer tick
CTrade  g_trade;

//+------------------------------------------------------------------+
int OnInit()
  {
   if(StringLen(API_Key) == 0)
      Print("MT5DB: API_Key is empty: the API answers 401. Create one with `mt5db keys create --scopes signals`.");
   g_trade.SetExpertMagicNumber(MagicNumber);
   g_trade.SetDeviationInPoints(SlippagePoints);
   LoadPending();
   EventSetTimer(PollSeconds > 1 ? PollSeconds : 1);
   return(INIT_SUCCEEDED);
  }

void OnDeinit(const int reason)
  {
   EventKillTimer();
   SavePending();
  }

void OnTimer()
  {
   FlushAcks();
   Signal signal;
   if(!Poll(signal))
      return;
   Execute(signal);
   FlushAcks();
  }

//+------------------------------------------------------------------+
//| Polling                                                          |
//+------------------------------------------------------------------+
string Account()
  {
   return(StringLen(AccountId) > 0 ? AccountId : IntegerToString(AccountInfoInteger(ACCOUNT_LOGIN)));
  }

bool Poll(Signal &signal)
  {
   string names[];
   string wanted = StringLen(Symbols) > 0 ? Symbols : _Symbol;
   int n = StringSplit(wanted, ',', names);
   string encoded = "";
   for(int i = 0; i < n; i++)
     {
      StringTrimLeft(names[i]);
      StringTrimRight(names[i]);
      encoded += (i > 0 ? "," : "") + UrlEncode(names[i]);
     }
   string path = MT5DB_NEXT_QUERY;
   StringReplace(path, "%ACCOUNT%", UrlEncode(Account()));
   StringReplace(path, "%SYMBOLS%", encoded);
   StringReplace(path, "%TIMEFRAME%", UrlEncode(Timeframe));
   string answer;
   int status = Request("GET", path, "", answer);
   if(status != 200)
     {
      if(status != -1)
         PrintFormat("MT5DB: /signals/next answered %d: %s", status, answer);
      return(false);
     }
   int at = StringFind(answer, MT5DB_SIGNALS_ARRAY);
   if(at < 0)
      return(false);
   string rest = StringSubstr(answer, at + StringLen(MT5DB_SIGNALS_ARRAY));
   if(StringGetCharacter(rest, 0) != '{')
      return(false);   // {"signals":[]}: nothing to do
   // The first signal object, without its free-form meta (which may hold keys of its own).
   string item = WithoutObject(FirstObject(rest), MT5DB_KEY_META);
   signal.id         = JsonString(item, MT5DB_KEY_ID);
   signal.symbol     = JsonString(item, MT5DB_KEY_SYMBOL);
   signal.timeframe  = JsonString(item, MT5DB_KEY_TIMEFRAME);
   signal.side       = JsonString(item, MT5DB_KEY_SIDE);
   StringToUpper(signal.side);
   signal.confidence = StringToDouble(JsonNumber(item, MT5DB_KEY_CONFIDENCE));
   signal.ttl_sec    = (int)StringToInteger(JsonNumber(item, MT5DB_KEY_TTL));
   signal.sl_pips    = (int)StringToInteger(JsonNumber(item, MT5DB_KEY_SL));
   signal.tp_pips    = (int)StringToInteger(JsonNumber(item, MT5DB_KEY_TP));
   signal.received   = TimeCurrent();
   if(signal.ttl_sec <= 0)
      signal.ttl_sec = 90;   // the contract's default
   return(StringLen(signal.id) > 0 && StringLen(signal.symbol) > 0);
  }

//+------------------------------------------------------------------+
//| Execution                                                        |
//+------------------------------------------------------------------+
void Execute(const Signal &signal)
  {
   // Never twice: a signal whose id is on an open position, a pending order or in the recent
   // history was traded before (perhaps by an earlier run whose ack did not get through).
   if(AlreadyTraded(signal.id))
     {
      PrintFormat("MT5DB: signal %s was already traded; acknowledging it again", signal.id);
      ulong ticket;
      double price;
      if(FindTrade(signal.id, ticket, price))
         QueueAck(AckFilled(signal, ticket, price));
      return;
     }
   string reason = Refusal(signal);
   if(StringLen(reason) > 0)
     {
      PrintFormat("MT5DB: signal %s refused: %s", signal.id, reason);
      QueueAck(AckRejected(signal));
      return;
     }
   if(signal.side == "CLOSE")
     {
      CloseAll(signal.symbol);
      QueueAck(AckFilled(signal, 0, SymbolInfoDouble(signal.symbol, SYMBOL_BID)));
      return;
     }
   double volume = OrderVolume(signal.symbol);
   bool buy = signal.side == "BUY";
   double price = buy ? SymbolInfoDouble(signal.symbol, SYMBOL_ASK) : SymbolInfoDouble(signal.symbol, SYMBOL_BID);
   double pip = Pip(signal.symbol);
   int digits = (int)SymbolInfoInteger(signal.symbol, SYMBOL_DIGITS);
   double sl = signal.sl_pips > 0 ? NormalizeDouble(buy ? price - signal.sl_pips * pip : price + signal.sl_pips * pip, digits) : 0.0;
   double tp = signal.tp_pips > 0 ? NormalizeDouble(buy ? price + signal.tp_pips * pip : price - signal.tp_pips * pip, digits) : 0.0;
   bool sent = buy ? g_trade.Buy(volume, signal.symbol, price, sl, tp, OrderTag(signal.id))
                   : g_trade.Sell(volume, signal.symbol, price, sl, tp, OrderTag(signal.id));
   uint code = g_trade.ResultRetcode();
   if(sent && (code == TRADE_RETCODE_DONE || code == TRADE_RETCODE_PLACED || code == TRADE_RETCODE_DONE_PARTIAL))
     {
      double filled = g_trade.ResultPrice() > 0 ? g_trade.ResultPrice() : price;
      PrintFormat("MT5DB: signal %s %s %.2f %s at %s", signal.id, signal.side, volume, signal.symbol,
                  DoubleToString(filled, digits));
      QueueAck(AckFilled(signal, g_trade.ResultOrder(), filled));
     }
   else
     {
      PrintFormat("MT5DB: signal %s: order refused by the terminal (%u %s)", signal.id, code,
                  g_trade.ResultRetcodeDescription());
      QueueAck(AckRejected(signal));
     }
  }

// Why a signal must not be traded now, or "" when it may.
string Refusal(const Signal &signal)
  {
   if(signal.side != "BUY" && signal.side != "SELL" && signal.side != "CLOSE")
      return("side " + signal.side + " places nothing");
   if(!SymbolSelect(signal.symbol, true))
      return("unknown symbol " + signal.symbol);
   // Expiry by the broker clock, from the moment the signal arrived; quotes older than the
   // TTL (a closed market, a lost connection) expire it too.
   datetime now = TimeCurrent();
   if(now > signal.received + signal.ttl_sec)
      return("expired");
   MqlTick tick;
   if(!SymbolInfoTick(signal.symbol, tick) || now - tick.time > signal.ttl_sec)
      return("no fresh quote");
   if(signal.side == "CLOSE")
      return("");
   if(CountPositions() >= MaxPositions)
      return("MaxPositions reached");
   if(TodayProfit() <= -MathAbs(MaxDailyLoss))
      return("MaxDailyLoss reached");
   if(OrderVolume(signal.symbol) <= 0.0)
      return("volume below the symbol's minimum");
   return("");
  }

// Lots capped by MaxLots and rounded down to the symbol's volume step.
double OrderVolume(const string symbol)
  {
   double step = SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP);
   double low = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MIN);
   double high = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MAX);
   double lots = MathMin(Lots, MaxLots);
   if(high > 0.0)
      lots = MathMin(lots, high);
   if(step > 0.0)
      lots = MathFloor(lots / step + 1e-9) * step;
   return(lots >= low ? NormalizeDouble(lots, 8) : 0.0);
  }

// One pip: ten points on 5- and 3-digit quotes (docs/ea-contract.md §11).
double Pip(const string symbol)
  {
   int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
   double point = SymbolInfoDouble(symbol, SYMBOL_POINT);
   return(digits == 5 || digits == 3 ? point * 10.0 : point);
  }

// The order comment that carries the signal: "mt5db:" and the id's first 25 hex digits (MT5
// keeps 31 characters of a comment; 100 bits tell signals apart).
string OrderTag(const string id)
  {
   string hex = id;
   StringReplace(hex, "-", "");
   return("mt5db:" + StringSubstr(hex, 0, 25));
  }

bool AlreadyTraded(const string id)
  {
   ulong ticket;
   double price;
   return(FindTrade(id, ticket, price));
  }

// Looks for the signal's comment on positions, pending orders, and the orders and deals of
// the last HistoryDays (brokers may add to a comment, so containing the tag counts).
bool FindTrade(const string id, ulong &ticket, double &price)
  {
   string mark = OrderTag(id);
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong t = PositionGetTicket(i);
      if(t > 0 && StringFind(PositionGetString(POSITION_COMMENT), mark) >= 0)
        {
         ticket = t;
         price = PositionGetDouble(POSITION_PRICE_OPEN);
         return(true);
        }
     }
   for(int i = OrdersTotal() - 1; i >= 0; i--)
     {
      ulong t = OrderGetTicket(i);
      if(t > 0 && StringFind(OrderGetString(ORDER_COMMENT), mark) >= 0)
        {
         ticket = t;
         price = OrderGetDouble(ORDER_PRICE_OPEN);
         return(true);
        }
     }
   if(!HistorySelect(TimeCurrent() - HistoryDays * 86400, TimeCurrent()))
      return(false);
   for(int i = HistoryOrdersTotal() - 1; i >= 0; i--)
     {
      ulong t = HistoryOrderGetTicket(i);
      if(t > 0 && StringFind(HistoryOrderGetString(t, ORDER_COMMENT), mark) >= 0)
        {
         ticket = t;
         price = HistoryOrderGetDouble(t, ORDER_PRICE_OPEN);
         return(true);
        }
     }
   for(int i = HistoryDealsTotal() - 1; i >= 0; i--)
     {
      ulong t = HistoryDealGetTicket(i);
      if(t > 0 && StringFind(HistoryDealGetString(t, DEAL_COMMENT), mark) >= 0)
        {
         ticket = (ulong)HistoryDealGetInteger(t, DEAL_ORDER);
         price = HistoryDealGetDouble(t, DEAL_PRICE);
         return(true);
        }
     }
   return(false);
  }

int CountPositions()
  {
   int n = 0;
   for(int i = PositionsTotal() - 1; i >= 0; i--)
      if(PositionGetTicket(i) > 0 && PositionGetInteger(POSITION_MAGIC) == MagicNumber)
         n++;
   return(n);
  }

// Today's result of this EA on the broker's day: closed deals plus open positions.
double TodayProfit()
  {
   MqlDateTime d;
   TimeToStruct(TimeCurrent(), d);
   d.hour = 0;
   d.min = 0;
   d.sec = 0;
   double total = 0.0;
   if(HistorySelect(StructToTime(d), TimeCurrent()))
      for(int i = HistoryDealsTotal() - 1; i >= 0; i--)
        {
         ulong t = HistoryDealGetTicket(i);
         if(t > 0 && HistoryDealGetInteger(t, DEAL_MAGIC) == MagicNumber)
            total += HistoryDealGetDouble(t, DEAL_PROFIT) + HistoryDealGetDouble(t, DEAL_SWAP) +
                     HistoryDealGetDouble(t, DEAL_COMMISSION);
        }
   for(int i = PositionsTotal() - 1; i >= 0; i--)
      if(PositionGetTicket(i) > 0 && PositionGetInteger(POSITION_MAGIC) == MagicNumber)
         total += PositionGetDouble(POSITION_PROFIT) + PositionGetDouble(POSITION_SWAP);
   return(total);
  }

void CloseAll(const string symbol)
  {
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong t = PositionGetTicket(i);
      if(t > 0 && PositionGetInteger(POSITION_MAGIC) == MagicNumber && PositionGetString(POSITION_SYMBOL) == symbol)
         g_trade.PositionClose(t, SlippagePoints);
     }
  }

//+------------------------------------------------------------------+
//| Acks: queued (and kept in a file) until the API confirms them    |
//+------------------------------------------------------------------+
string AckFilled(const Signal &signal, const ulong ticket, const double price)
  {
   string body = MT5DB_ACK_FILLED;
   StringReplace(body, "%TICKET%", IntegerToString((long)ticket));
   StringReplace(body, "%PRICE%", DoubleToString(price, (int)SymbolInfoInteger(signal.symbol, SYMBOL_DIGITS)));
   return(FillAck(body, signal));
  }

string AckRejected(const Signal &signal)
  {
   return(FillAck(MT5DB_ACK_REJECTED, signal));
  }

string FillAck(const string template_body, const Signal &signal)
  {
   string body = template_body;
   StringReplace(body, "%ID%", JsonEscape(signal.id));
   StringReplace(body, "%SYMBOL%", JsonEscape(signal.symbol));
   StringReplace(body, "%SIDE%", JsonEscape(signal.side));
   StringReplace(body, "%TS%", IsoZ(TimeCurrent()));
   StringReplace(body, "%ACCOUNT%", JsonEscape(Account()));
   return(body);
  }

void QueueAck(const string body)
  {
   int n = ArraySize(g_pending);
   ArrayResize(g_pending, n + 1);
   g_pending[n] = body;
   SavePending();
  }

// Posts every queued ack; an ack leaves the queue only on 200 {"ok":true} (acks are idempotent
// on the API, so a repeat after a lost answer changes nothing).
void FlushAcks()
  {
   if(ArraySize(g_pending) == 0)
      return;
   string keep[];
   for(int i = 0; i < ArraySize(g_pending); i++)
     {
      string answer;
      int status = Request("POST", MT5DB_ACK_PATH, g_pending[i], answer);
      if(status == 200 && StringFind(answer, MT5DB_ACK_OK) >= 0)
         continue;
      int n = ArraySize(keep);
      ArrayResize(keep, n + 1);
      keep[n] = g_pending[i];
     }
   bool changed = ArraySize(keep) != ArraySize(g_pending);
   ArrayResize(g_pending, ArraySize(keep));
   for(int i = 0; i < ArraySize(keep); i++)
      g_pending[i] = keep[i];
   if(changed)
      SavePending();
  }

void SavePending()
  {
   int f = FileOpen(PENDING_FILE, FILE_WRITE | FILE_TXT | FILE_COMMON | FILE_ANSI);
   if(f == INVALID_HANDLE)
      return;
   for(int i = 0; i < ArraySize(g_pending); i++)
      FileWriteString(f, g_pending[i] + "\n");
   FileClose(f);
  }

void LoadPending()
  {
   ArrayResize(g_pending, 0);
   int f = FileOpen(PENDING_FILE, FILE_READ | FILE_TXT | FILE_COMMON | FILE_ANSI);
   if(f == INVALID_HANDLE)
      return;
   while(!FileIsEnding(f))
     {
      string line = FileReadString(f);
      if(StringLen(line) == 0)
         continue;
      int n = ArraySize(g_pending);
      ArrayResize(g_pending, n + 1);
      g_pending[n] = line;
     }
   FileClose(f);
  }

//+------------------------------------------------------------------+
//| HTTP and text                                                    |
//+------------------------------------------------------------------+
int Request(const string method, const string path, const string body, string &answer)
  {
   string headers = MT5DB_HEADERS;
   if(StringLen(body) > 0)
      headers += MT5DB_JSON_HEADER;
   if(StringLen(API_Key) > 0)
     {
      string key = MT5DB_KEY_HEADER;
      StringReplace(key, "%KEY%", API_Key);
      headers += key;
     }
   char data[];
   char result[];
   string answer_headers;
   if(StringLen(body) > 0)
     {
      int size = StringToCharArray(body, data, 0, -1, CP_UTF8);
      ArrayResize(data, size > 0 ? size - 1 : 0);   // without the terminating NUL
     }
   ResetLastError();
   int status = WebRequest(method, API_BaseUrl + path, headers, RequestTimeoutMs, data, result, answer_headers);
   if(status == -1)
     {
      int error = GetLastError();
      if(error == 4014)
         PrintFormat("MT5DB: WebRequest to %s is not allowed: add it under Tools > Options > Expert Advisors", API_BaseUrl);
      else
         PrintFormat("MT5DB: WebRequest failed (error %d)", error);
     }
   answer = CharArrayToString(result, 0, -1, CP_UTF8);
   return(status);
  }

// The object that starts json (up to its matching brace; strings may hold braces).
string FirstObject(const string json)
  {
   int depth = 0;
   bool quoted = false;
   for(int i = 0; i < StringLen(json); i++)
     {
      ushort c = StringGetCharacter(json, i);
      if(quoted)
        {
         if(c == '\\')
            i++;
         else
            if(c == '"')
               quoted = false;
         continue;
        }
      if(c == '"')
         quoted = true;
      else
         if(c == '{')
            depth++;
         else
            if(c == '}' && --depth == 0)
               return(StringSubstr(json, 0, i + 1));
     }
   return(json);
  }

// json without the object value of key (and its key), e.g. the signal without "meta".
string WithoutObject(const string json, const string key)
  {
   string needle = MT5DB_VALUE;
   StringReplace(needle, "%NAME%", key);
   int at = StringFind(json, needle);
   if(at < 0)
      return(json);
   string value = FirstObject(StringSubstr(json, at + StringLen(needle)));
   return(StringSubstr(json, 0, at) + StringSubstr(json, at + StringLen(needle) + StringLen(value)));
  }

// The value of "key":"..." in a compact JSON object (the API's answers have no spaces).
string JsonString(const string json, const string key)
  {
   string needle = MT5DB_STRING_VALUE;
   StringReplace(needle, "%NAME%", key);
   int at = StringFind(json, needle);
   if(at < 0)
      return("");
   int start = at + StringLen(needle);
   int end = StringFind(json, "\"", start);
   return(end < 0 ? "" : StringSubstr(json, start, end - start));
  }

// The text of "key":number in a compact JSON object.
string JsonNumber(const string json, const string key)
  {
   string needle = MT5DB_VALUE;
   StringReplace(needle, "%NAME%", key);
   int at = StringFind(json, needle);
   if(at < 0)
      return("");
   int start = at + StringLen(needle);
   int end = start;
   while(end < StringLen(json))
     {
      ushort c = StringGetCharacter(json, end);
      if(c == ',' || c == '}' || c == ']')
         break;
      end++;
     }
   return(StringSubstr(json, start, end - start));
  }

string JsonEscape(const string text)
  {
   string out = text;
   StringReplace(out, "\\", "\\\\");
   StringReplace(out, "\"", "\\\"");
   return(out);
  }

string UrlEncode(const string text)
  {
   string out = "";
   uchar bytes[];
   int n = StringToCharArray(text, bytes, 0, -1, CP_UTF8) - 1;
   for(int i = 0; i < n; i++)
     {
      uchar c = bytes[i];
      if((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~')
         out += CharToString(c);
      else
         out += StringFormat("%%%02X", c);
     }
   return(out);
  }

// The broker clock as the API expects it: labelled Z, never converted (docs/ea-contract.md §5).
string IsoZ(const datetime t)
  {
   MqlDateTime d;
   TimeToStruct(t, d);
   return(StringFormat("%04d-%02d-%02dT%02d:%02d:%02dZ", d.year, d.mon, d.day, d.hour, d.min, d.sec));
  }
//+------------------------------------------------------------------+
