//+------------------------------------------------------------------+
//| MT5DB_Collector.mq5                                              |
//| Posts closed bars (and optionally the forming bar) of the Market |
//| Watch symbols to an MT5 Trading DB API: POST /ingest.            |
//| Contract: docs/ea-contract.md (§2 headers, §3 candles, §9 codes) |
//+------------------------------------------------------------------+
#property copyright "MT5 Trading DB"
#property version   "1.00"
#property description "Sends closed bars of the Market Watch symbols to POST /ingest in batches,"
#property description "remembers the last bar sent per symbol and timeframe and re-sends what was"
#property description "missed after an outage; backs off on 429/503 (Retry-After)."

//=== WIRE FORMAT BEGIN ==============================================
// Every request this EA sends and every part of an answer it reads is written here, and only
// here (tests/unit/ea/test_wire_formats.py extracts this block and checks each body against
// the API). Placeholders are %NAME%; the code fills them with StringReplace:
//   %TS%         bar open time on the broker clock, YYYY-MM-DDTHH:MM:SSZ (docs/ea-contract.md §5)
//   %SYMBOL%     Market Watch name, JSON-escaped
//   %TIMEFRAME%  M1 M5 M15 M30 H1 H4 D1 W1 MN1, any other period as its numeric code (§6)
//   %OPEN% %HIGH% %LOW% %CLOSE%   DoubleToString(price, SYMBOL_DIGITS)
//   %VOLUME%     tick volume, an integer
//   %ITEMS%      candle objects joined by MT5DB_ITEM_SEPARATOR
//   %KEY% %REQID% %COUNT% %CLIENTTIME% %ACCOUNT% %BUILD% %NSYMBOLS%   header values
#define MT5DB_INGEST_PATH     "/ingest"
#define MT5DB_CANDLE_JSON     "{\"ts\":\"%TS%\",\"symbol\":\"%SYMBOL%\",\"timeframe\":\"%TIMEFRAME%\",\"open\":%OPEN%,\"high\":%HIGH%,\"low\":%LOW%,\"close\":%CLOSE%,\"volume\":%VOLUME%}"
#define MT5DB_BATCH_JSON      "{\"items\":[%ITEMS%]}"
#define MT5DB_ITEM_SEPARATOR  ","
#define MT5DB_HEADERS         "Content-Type: application/json\r\nAccept: application/json\r\nX-Client-ReqId: %REQID%\r\nX-Client-Items: %COUNT%\r\nX-Client-Time: %CLIENTTIME%\r\nX-Client-Build: %BUILD%\r\nUser-Agent: MT5DB-Collector/1.00 (Account:%ACCOUNT%; Build:%BUILD%; Symbols:%NSYMBOLS%)\r\n"
#define MT5DB_KEY_HEADER      "X-API-Key: %KEY%\r\n"
// The answer: 200 {"ok":true,"received":N,"inserted":N,"updated":N,"duplicates":N,"rejected":N,"errors":[...]}
#define MT5DB_ANSWER_KEYS     "received,inserted,updated,duplicates,rejected"
#define MT5DB_VALUE           "\"%NAME%\":"
#define MT5DB_RETRY_AFTER     "retry-after:"
//=== WIRE FORMAT END ================================================

input string API_BaseUrl        = "http://127.0.0.1:18001"; // API base URL (also under Tools > Options > Expert Advisors > Allow WebRequest)
input string API_Key            = "";                       // API key with the ingest scope (mt5db keys create ...)
input string Timeframes         = "M1,M5,M15,H1,H4,D1";     // timeframes to collect, comma-separated
input bool   SendFormingBar     = false;                    // also send a snapshot of the bar still forming
input int    TimerSeconds       = 15;                       // how often to look for new bars
input int    MaxItemsPerPost    = 500;                      // candles per request (halved on 413)
input int    CatchUpBars        = 1000;                     // at most this many missed bars per series and pass
input int    RequestTimeoutMs   = 5000;                     // WebRequest timeout
input int    MaxBackoffSeconds  = 300;                      // ceiling of the back-off after failures

// One series the EA follows: a symbol and a timeframe, and the newest closed bar the API stored.
struct Series
  {
   string            symbol;
   ENUM_TIMEFRAMES   period;
   datetime          last_sent;
   datetime          pending;     // newest bar of the request in flight (committed on a 2xx)
  };

Series   g_series[];
int      g_batch_limit = 0;
long     g_request_id  = 0;
datetime g_resume_at   = 0;        // local time before which nothing is sent (back-off)
int      g_backoff     = 0;        // seconds of the current back-off

//+------------------------------------------------------------------+
int OnInit()
  {
   if(StringLen(API_Key) == 0)
      Print("MT5DB: API_Key is empty: the API answers 401 to every post. Create one with `mt5db keys create --scopes ingest`.");
   g_batch_limit = MaxItemsPerPost > 1 ? MaxItemsPerPost : 1;
   if(!BuildSeries())
      return(INIT_PARAMETERS_INCORRECT);
   EventSetTimer(TimerSeconds > 1 ? TimerSeconds : 1);
   PrintFormat("MT5DB: collecting %d series for %s; remember to allow WebRequest for %s", ArraySize(g_series),
               Timeframes, API_BaseUrl);
   return(INIT_SUCCEEDED);
  }

void OnDeinit(const int reason)
  {
   EventKillTimer();
  }

void OnTimer()
  {
   if(TimeLocal() < g_resume_at)
      return;
   SendPending();
  }

//+------------------------------------------------------------------+
//| Series: Market Watch symbols x the chosen timeframes, with the   |
//| last bar sent kept in terminal global variables (restarts keep   |
//| it, so an outage is caught up from where it stopped).            |
//+------------------------------------------------------------------+
bool BuildSeries()
  {
   string names[];
   int count = StringSplit(Timeframes, ',', names);
   ENUM_TIMEFRAMES periods[];
   for(int i = 0; i < count; i++)
     {
      string name = names[i];
      StringTrimLeft(name);
      StringTrimRight(name);
      ENUM_TIMEFRAMES period;
      if(!PeriodFromName(name, period))
        {
         PrintFormat("MT5DB: unknown timeframe '%s' in Timeframes", name);
         return(false);
        }
      int n = ArraySize(periods);
      ArrayResize(periods, n + 1);
      periods[n] = period;
     }
   ArrayResize(g_series, 0);
   int symbols = SymbolsTotal(true);
   for(int s = 0; s < symbols; s++)
     {
      string symbol = SymbolName(s, true);
      for(int p = 0; p < ArraySize(periods); p++)
        {
         int n = ArraySize(g_series);
         ArrayResize(g_series, n + 1);
         g_series[n].symbol = symbol;
         g_series[n].period = periods[p];
         g_series[n].pending = 0;
         string key = StateKey(symbol, periods[p]);
         g_series[n].last_sent = GlobalVariableCheck(key) ? (datetime)GlobalVariableGet(key) : 0;
        }
     }
   return(ArraySize(g_series) > 0);
  }

string StateKey(const string symbol, ENUM_TIMEFRAMES period)
  {
   return("MT5DB." + symbol + "." + TimeframeName(period));
  }

//+------------------------------------------------------------------+
//| One pass: the closed bars after the last one stored, per series, |
//| in requests of at most g_batch_limit candles.                    |
//+------------------------------------------------------------------+
void SendPending()
  {
   string items = "";
   int    in_batch = 0;
   for(int i = 0; i < ArraySize(g_series); i++)
     {
      string symbol = g_series[i].symbol;
      ENUM_TIMEFRAMES period = g_series[i].period;
      datetime forming = iTime(symbol, period, 0);
      if(forming == 0)
         continue;                        // no history for this series yet
      int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
      MqlRates rates[];
      ArraySetAsSeries(rates, false);     // oldest first
      int copied;
      if(g_series[i].last_sent == 0)      // a first run sends the newest closed bar only
         copied = CopyRates(symbol, period, 1, 1, rates);
      else                                // every closed bar after the last one stored
         copied = CopyRates(symbol, period, g_series[i].last_sent + 1, forming - 1, rates);
      // After a long outage the oldest CatchUpBars go now, the rest in the next passes.
      for(int k = 0; k < copied && k < CatchUpBars; k++)
        {
         if(rates[k].time <= g_series[i].last_sent || rates[k].time >= forming)
            continue;
         items = Append(items, CandleJson(symbol, period, rates[k], digits));
         g_series[i].pending = rates[k].time;
         if(++in_batch >= g_batch_limit)
           {
            if(!Flush(items, in_batch))
               return;
            items = "";
            in_batch = 0;
           }
        }
      if(SendFormingBar)
        {
         // A snapshot of the forming bar: the API merges later snapshots of the same bar.
         MqlRates now[];
         if(CopyRates(symbol, period, 0, 1, now) == 1)
           {
            items = Append(items, CandleJson(symbol, period, now[0], digits));
            in_batch++;
           }
        }
     }
   if(in_batch > 0)
      Flush(items, in_batch);
  }

string Append(const string items, const string item)
  {
   return(StringLen(items) == 0 ? item : items + MT5DB_ITEM_SEPARATOR + item);
  }

// Posts one batch; on a 2xx every series commits its pending bar. Returns false to stop the pass.
bool Flush(const string items, const int count)
  {
   string body = MT5DB_BATCH_JSON;
   StringReplace(body, "%ITEMS%", items);
   string answer;
   string answer_headers;
   int status = Post(MT5DB_INGEST_PATH, body, count, answer, answer_headers);
   if(status >= 200 && status < 300)
     {
      for(int i = 0; i < ArraySize(g_series); i++)
         if(g_series[i].pending > g_series[i].last_sent)
           {
            g_series[i].last_sent = g_series[i].pending;
            GlobalVariableSet(StateKey(g_series[i].symbol, g_series[i].period), (double)g_series[i].last_sent);
           }
      g_backoff = 0;
      PrintFormat("MT5DB: %d candles sent: %s", count, AnswerSummary(answer));
      return(true);
     }
   ForgetPending();
   if(status == 413 && g_batch_limit > 1)
     {
      g_batch_limit = g_batch_limit / 2;   // too large: smaller requests from now on
      PrintFormat("MT5DB: 413, batches of %d from now on", g_batch_limit);
      return(false);
     }
   if(status == 429 || status == 503)
     {
      int wait = RetryAfterSeconds(answer_headers);
      BackOff(wait > 0 ? wait : 0);
      PrintFormat("MT5DB: %d, waiting %d s before the next post", status, g_backoff);
      return(false);
     }
   if(status == -1)
     {
      int error = GetLastError();
      if(error == 4014)
         PrintFormat("MT5DB: WebRequest to %s is not allowed: add it under Tools > Options > Expert Advisors", API_BaseUrl);
      else
         PrintFormat("MT5DB: WebRequest failed (error %d): the API is unreachable", error);
     }
   else
      PrintFormat("MT5DB: %d from the API: %s", status, answer);
   BackOff(0);   // nothing was stored: the same bars are sent again after the back-off
   return(false);
  }

void ForgetPending()
  {
   for(int i = 0; i < ArraySize(g_series); i++)
      g_series[i].pending = 0;
  }

// Doubles the wait (from 2 s up to MaxBackoffSeconds), or waits what the server asked.
void BackOff(const int server_seconds)
  {
   if(server_seconds > 0)
      g_backoff = server_seconds;
   else
      g_backoff = g_backoff == 0 ? 2 : (g_backoff * 2 > MaxBackoffSeconds ? MaxBackoffSeconds : g_backoff * 2);
   g_resume_at = TimeLocal() + g_backoff;
  }

//+------------------------------------------------------------------+
//| HTTP                                                             |
//+------------------------------------------------------------------+
int Post(const string path, const string body, const int count, string &answer, string &answer_headers)
  {
   string headers = MT5DB_HEADERS;
   StringReplace(headers, "%REQID%", IntegerToString(++g_request_id));
   StringReplace(headers, "%COUNT%", IntegerToString(count));
   StringReplace(headers, "%CLIENTTIME%", IsoZ(TimeCurrent()));
   StringReplace(headers, "%BUILD%", IntegerToString(TerminalInfoInteger(TERMINAL_BUILD)));
   StringReplace(headers, "%ACCOUNT%", IntegerToString(AccountInfoInteger(ACCOUNT_LOGIN)));
   StringReplace(headers, "%NSYMBOLS%", IntegerToString(SymbolsTotal(true)));
   if(StringLen(API_Key) > 0)
     {
      string key = MT5DB_KEY_HEADER;
      StringReplace(key, "%KEY%", API_Key);
      headers += key;
     }
   char data[];
   char result[];
   // StringToCharArray counts the terminating NUL: drop it (a trailing byte breaks strict parsers).
   int size = StringToCharArray(body, data, 0, -1, CP_UTF8);
   ArrayResize(data, size > 0 ? size - 1 : 0);
   ResetLastError();
   int status = WebRequest("POST", API_BaseUrl + path, headers, RequestTimeoutMs, data, result, answer_headers);
   answer = CharArrayToString(result, 0, -1, CP_UTF8);
   return(status);
  }

int RetryAfterSeconds(const string headers)
  {
   string lower = headers;
   StringToLower(lower);
   int at = StringFind(lower, MT5DB_RETRY_AFTER);
   if(at < 0)
      return(0);
   string rest = StringSubstr(lower, at + StringLen(MT5DB_RETRY_AFTER));
   StringTrimLeft(rest);
   return((int)StringToInteger(rest));
  }

// "inserted=3 updated=0 ..." from the compact answer (docs/api.md), for the Journal.
string AnswerSummary(const string answer)
  {
   string keys[];
   int n = StringSplit(MT5DB_ANSWER_KEYS, ',', keys);
   string out = "";
   for(int i = 0; i < n; i++)
     {
      string needle = MT5DB_VALUE;
      StringReplace(needle, "%NAME%", keys[i]);
      int at = StringFind(answer, needle);
      if(at >= 0)
         out += keys[i] + "=" + IntegerToString(StringToInteger(StringSubstr(answer, at + StringLen(needle)))) + " ";
     }
   return(out);
  }

//+------------------------------------------------------------------+
//| Bodies                                                           |
//+------------------------------------------------------------------+
string CandleJson(const string symbol, ENUM_TIMEFRAMES period, const MqlRates &bar, const int digits)
  {
   string item = MT5DB_CANDLE_JSON;
   StringReplace(item, "%TS%", IsoZ(bar.time));
   StringReplace(item, "%SYMBOL%", JsonEscape(symbol));
   StringReplace(item, "%TIMEFRAME%", TimeframeName(period));
   StringReplace(item, "%OPEN%", DoubleToString(bar.open, digits));
   StringReplace(item, "%HIGH%", DoubleToString(bar.high, digits));
   StringReplace(item, "%LOW%", DoubleToString(bar.low, digits));
   StringReplace(item, "%CLOSE%", DoubleToString(bar.close, digits));
   StringReplace(item, "%VOLUME%", IntegerToString(bar.tick_volume));
   return(item);
  }

// The broker clock as the API expects it: labelled Z, never converted (docs/ea-contract.md §5).
string IsoZ(const datetime t)
  {
   MqlDateTime d;
   TimeToStruct(t, d);
   return(StringFormat("%04d-%02d-%02dT%02d:%02d:%02dZ", d.year, d.mon, d.day, d.hour, d.min, d.sec));
  }

string JsonEscape(const string text)
  {
   string out = text;
   StringReplace(out, "\\", "\\\\");
   StringReplace(out, "\"", "\\\"");
   return(out);
  }

// docs/ea-contract.md §6: the nine names, every other period as its numeric enum value.
string TimeframeName(ENUM_TIMEFRAMES period)
  {
   switch(period)
     {
      case PERIOD_M1:  return("M1");
      case PERIOD_M5:  return("M5");
      case PERIOD_M15: return("M15");
      case PERIOD_M30: return("M30");
      case PERIOD_H1:  return("H1");
      case PERIOD_H4:  return("H4");
      case PERIOD_D1:  return("D1");
      case PERIOD_W1:  return("W1");
      case PERIOD_MN1: return("MN1");
     }
   return(IntegerToString((int)period));
  }

bool PeriodFromName(const string name, ENUM_TIMEFRAMES &period)
  {
   ENUM_TIMEFRAMES all[] = {PERIOD_M1, PERIOD_M2, PERIOD_M3, PERIOD_M4, PERIOD_M5, PERIOD_M6, PERIOD_M10,
                            PERIOD_M12, PERIOD_M15, PERIOD_M20, PERIOD_M30, PERIOD_H1, PERIOD_H2, PERIOD_H3,
                            PERIOD_H4, PERIOD_H6, PERIOD_H8, PERIOD_H12, PERIOD_D1, PERIOD_W1, PERIOD_MN1};
   for(int i = 0; i < ArraySize(all); i++)
     {
      // EnumToString gives PERIOD_H1; the input uses H1.
      if(EnumToString(all[i]) == "PERIOD_" + name)
        {
         period = all[i];
         return(true);
        }
     }
   return(false);
  }
//+------------------------------------------------------------------+
